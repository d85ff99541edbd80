"""Reconnect delays: a ladder that starts quick and stays gentle on cameras and servers.

Cameras have few RTSP session slots and a restarting Redis does not need a storm of
reconnects, so retries climb 1 s, 2 s, 5 s, then every 10 s (go2rtc and Frigate do alike).
"""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_LADDER = (1.0, 2.0, 5.0, 10.0)


class Backoff:
    def __init__(self, ladder: Sequence[float] = DEFAULT_LADDER) -> None:
        if not ladder or any(step < 0 for step in ladder):
            raise ValueError("backoff ladder needs at least one non-negative delay")
        self._ladder = tuple(ladder)
        self.failures = 0

    def next_delay(self) -> float:
        """Delay before the next attempt; each call counts one more failure."""
        delay = self._ladder[min(self.failures, len(self._ladder) - 1)]
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0
