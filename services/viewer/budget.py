"""Render isolation: one camera's costly frames must not take the render threads from the others."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from prometheus_client import Counter, Gauge

log = logging.getLogger("framebus.viewer")

# A camera whose render overran VIEWER_RENDER_BUDGET_SECONDS waits this many times the render's
# length before its next one: it keeps at most a fifth of a render thread, whatever it sends.
OVER_BUDGET_PENALTY = 4.0
# A camera stays "degraded" this long after its last render over budget.
DEGRADED_HOLD_SECONDS = 10.0

T = TypeVar("T")


def timed(work: Callable[[], T]) -> tuple[T, float]:
    """Runs ``work`` (in an executor thread) and returns its result with the CPU time it took on
    that thread: time queued behind other cameras, or descheduled, is not this camera's cost."""
    started = time.thread_time()
    result = work()
    return result, time.thread_time() - started


class RenderBudget:
    def __init__(self, camera: str, budget_seconds: float, over_budget: Counter, degraded: Gauge) -> None:
        self.camera = camera
        self.budget_seconds = budget_seconds
        self._over_budget = over_budget
        self._degraded_gauge = degraded
        self._degraded_until = 0.0

    @property
    def degraded(self) -> bool:
        return time.monotonic() < self._degraded_until

    def report(self) -> None:
        """Keeps the gauge in step once the hold has passed (called every second)."""
        self._degraded_gauge.set(self.degraded)

    async def charge(self, took: float) -> None:
        """After a render of ``took`` CPU seconds: over budget, the camera waits its penalty."""
        if took <= self.budget_seconds:
            return
        if not self.degraded:
            log.warning(
                "camera %s: a render took %.0f ms of CPU (VIEWER_RENDER_BUDGET_SECONDS=%g): "
                "rendering it less often",
                self.camera,
                took * 1000,
                self.budget_seconds,
            )
        self._degraded_until = time.monotonic() + DEGRADED_HOLD_SECONDS
        self._over_budget.inc()
        self._degraded_gauge.set(1)
        await asyncio.sleep(took * OVER_BUDGET_PENALTY)
