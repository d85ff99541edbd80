"""Work on demand: a camera is rendered only while someone watches it.

Watched means a browser streams it, or its snapshot or figures were asked for within the
last ``linger`` seconds (the page polls both). An unwatched camera's feed pulls nothing:
no JPEG crosses the network and nothing is decoded; discovery alone says whether it is live.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sized

# Called when someone asks for a camera.
OnAsk = Callable[[], None]


class Demand:
    """``on_ask``: called when someone asks for the camera (a stream joins, a snapshot or the
    figures are asked for), so the viewer can tell capture at once, not at its next check."""

    def __init__(self, clients: Sized, linger_seconds: float, on_ask: OnAsk | None = None) -> None:
        self._clients = clients
        self._linger = linger_seconds
        self._on_ask = on_ask
        self._asked_at = float("-inf")
        self._changed = asyncio.Event()  # set when the camera may have become watched
        self._want = asyncio.Event()  # set when the renderer is ready for the next frame

    @property
    def watched(self) -> bool:
        return len(self._clients) > 0 or time.monotonic() - self._asked_at < self._linger

    def ask(self) -> None:
        """A snapshot or the figures were asked for: render for the next ``linger`` seconds."""
        self._asked_at = time.monotonic()
        self.client_joined()

    def client_joined(self) -> None:
        self._changed.set()
        if self._on_ask is not None:
            self._on_ask()

    async def wait_watched(self) -> bool:
        """Until someone watches; True when it had to wait (the camera was idle until now)."""
        idle = False
        while not self.watched:
            idle = True
            self._changed.clear()
            await self._changed.wait()
        return idle

    def want_frame(self) -> None:
        self._want.set()

    def frame_arrived(self) -> None:
        self._want.clear()

    async def frame_wanted(self) -> None:
        """Until the renderer asks for a frame (the feed's cue to pull one). The request stands
        until a frame arrives, so a feed that restarts (a crash, a reconnect) still answers it."""
        await self._want.wait()
