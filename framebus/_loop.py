"""An event loop in one background thread, for the library's plain (non-async) objects."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
STOP_SECONDS = 5.0


def _stop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    if loop.is_running():
        loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=STOP_SECONDS)
    if not loop.is_running() and not loop.is_closed():
        loop.close()


class LoopThread:
    """Runs coroutines on a private loop; :meth:`stop` (or garbage collection of ``owner``)
    ends the thread, so a forgotten object does not leak it."""

    def __init__(self, owner: object, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()
        self._finalizer = weakref.finalize(owner, _stop, self.loop, self._thread)
        # At interpreter exit the owners' own atexit hooks close their connections on this
        # loop first; the daemon thread then simply ends with the process.
        self._finalizer.atexit = False

    @property
    def running(self) -> bool:
        return self._finalizer.alive

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coroutine`` on the loop and wait for its result (from any other thread)."""
        if not self.running:
            coroutine.close()
            raise RuntimeError("already closed")
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        self._finalizer()
