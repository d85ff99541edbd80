"""Frame-rate pacing: how long a file or pattern waits, and which live frames a cap lets through."""

from __future__ import annotations


class Pacer:
    """Keeps frames at most ``fps`` per second; ``fps`` of None or 0 means no limit.

    ``wait_time`` paces a source we read as fast as we like (file, pattern): sleep that long.
    ``admit`` thins a live source that paces itself: frames it refuses are skipped.
    A pacer that falls behind by more than one period restarts from now, so it never bursts.
    """

    # A live camera's frames jitter; accept one that arrives a quarter period early.
    EARLY_TOLERANCE = 0.25

    def __init__(self, fps: float | None) -> None:
        self.period = 1.0 / fps if fps else 0.0
        self._next: float | None = None

    def wait_time(self, now: float) -> float:
        if not self.period:
            return 0.0
        if self._next is None or now - self._next > self.period:
            self._next = now
        wait = max(0.0, self._next - now)
        self._next += self.period
        return wait

    def admit(self, now: float) -> bool:
        if not self.period:
            return True
        if self._next is not None and now < self._next - self.EARLY_TOLERANCE * self.period:
            return False
        if self._next is None or now - self._next > self.period:
            self._next = now
        self._next += self.period
        return True
