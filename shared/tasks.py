"""Owner of a service's long-running tasks: restarts a crashed one, cancels all on shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from prometheus_client import Counter

log = logging.getLogger("framebus.tasks")

TASK_RESTARTS = Counter(
    "framebus_task_restarts_total", "Background tasks restarted after an unexpected error.", ["task"]
)
RESTART_DELAY_SECONDS = 1.0
STOP_SECONDS = 0.5

TaskFactory = Callable[[], Coroutine[Any, Any, None]]


class BackgroundTasks:
    """Named tasks that loop forever; ``cancel`` ends one (a camera that went away), ``stop`` all."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping = False

    def __contains__(self, name: str) -> bool:
        return name in self._tasks

    def begin_stop(self) -> None:
        """From now on a task that ends (its input closed for shutdown) is not restarted."""
        self._stopping = True

    def start(self, name: str, factory: TaskFactory) -> None:
        if name in self._tasks:
            raise ValueError(f"task {name} is already running")
        task = asyncio.create_task(self._keep_running(name, factory), name=name)
        self._tasks[name] = task
        task.add_done_callback(lambda done: self._forget(name, done))

    def _forget(self, name: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(name) is task:
            del self._tasks[name]

    async def cancel(self, *names: str) -> None:
        """Cancels these tasks and waits STOP_SECONDS at most: one that ignores its cancellation
        is abandoned (logged), so a caller (a subscriber leaving) never hangs on it."""
        tasks = [task for name in names if (task := self._tasks.pop(name, None)) is not None]
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        done, pending = await asyncio.wait(tasks, timeout=STOP_SECONDS)
        for task in done:
            if not task.cancelled() and (exc := task.exception()) is not None:
                log.debug("task %s ended with %r while being cancelled", task.get_name(), exc)
        if pending:
            names_left = ", ".join(task.get_name() for task in pending)
            log.error("tasks did not stop within %.1fs (abandoned): %s", STOP_SECONDS, names_left)

    async def _keep_running(self, name: str, factory: TaskFactory) -> None:
        # These tasks loop forever; returning or raising is a bug, so it is loud and counted,
        # and the task comes back rather than leaving the service half-alive.
        while True:
            try:
                await factory()
                if self._stopping or self._cancelling():
                    return
                log.error("task %s returned unexpectedly; restarting", name)
            except asyncio.CancelledError:
                raise
            except Exception:
                if self._cancelling():
                    raise  # a task being stopped that fails on its way out is not restarted
                log.exception("task %s crashed; restarting in %.0fs", name, RESTART_DELAY_SECONDS)
            TASK_RESTARTS.labels(name).inc()
            await asyncio.sleep(RESTART_DELAY_SECONDS)

    @staticmethod
    def _cancelling() -> bool:
        # On 3.11 a cancellation can be swallowed by asyncio.wait_for in library code; the
        # task's own count still says it was asked to stop.
        task = asyncio.current_task()
        return task is not None and task.cancelling() > 0

    async def stop(self) -> None:
        """Cancels every task; one that ignores the cancellation is abandoned after STOP_SECONDS
        (logged), so shutdown never hangs on it."""
        self._stopping = True
        await self.cancel(*self._tasks)
