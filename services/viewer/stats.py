"""Live figures for the page and the logs: delivered fps and latency percentiles."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from shared.percentiles import percentile


class RollingStats:
    """Frames delivered over the last ``window`` seconds and the latency of the last ``samples``."""

    def __init__(self, window: float = 5.0, samples: int = 300) -> None:
        self.window = window
        self._ready_times: deque[float] = deque()
        self._latencies: deque[float] = deque(maxlen=samples)

    def record(self, latency_seconds: float, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._ready_times.append(now)
        self._latencies.append(latency_seconds)
        self._expire(now)

    def fps(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self._expire(now)
        if len(self._ready_times) < 2:
            return 0.0
        # Counting to "now" (not to the newest frame) makes the figure fall when frames stop.
        span = now - self._ready_times[0]
        return len(self._ready_times) / span if span > 0 else 0.0

    def percentile(self, q: float) -> float | None:
        """Of the recent latencies, by the definition the bench uses too."""
        return percentile(self._latencies, q)

    def _expire(self, now: float) -> None:
        while self._ready_times and now - self._ready_times[0] > self.window:
            self._ready_times.popleft()


@dataclass(frozen=True, slots=True)
class CameraSummary:
    """What the page and the API show of a camera; computed in one place."""

    camera: str
    live: bool
    watched: bool
    degraded: bool
    fps: float
    latency_ms: dict[str, float | None]
    age_seconds: float | None
    dropped: dict[str, int] = field(default_factory=dict)
    seq: int | None = None
    clients: int = 0
