"""One writer per camera for every MJPEG browser: the same bytes, written once per client.

A task per browser that wakes for each frame costs a task switch, a future and an aiohttp
write per client per frame (measured: 100 readers cost +57% viewer CPU). Here one task per
camera writes the pre-framed part straight into each client's transport. A client whose
unsent buffer already holds more than ``SLOW_CLIENT_BUFFER_BYTES`` skips frames (counted)
instead of growing memory, so one stalled browser never slows the others.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Protocol

from services.viewer import metrics, mjpeg
from services.viewer.render import RenderedFrame
from shared.newest import Broadcast, BroadcastClosed

# A few 600x600 frames; past that the browser is not keeping up and gets the newest later.
SLOW_CLIENT_BUFFER_BYTES = 256 * 1024
DEFAULT_STALL_SECONDS = 10.0  # VIEWER_CLIENT_STALL_SECONDS


class ClientTransport(Protocol):
    """What a stream client needs of its asyncio transport."""

    def write(self, data: bytes) -> None: ...
    def is_closing(self) -> bool: ...
    def get_write_buffer_size(self) -> int: ...
    def abort(self) -> None: ...


@dataclass(eq=False)
class StreamClient:
    transport: ClientTransport
    chunked: bool  # an HTTP/1.1 response is chunked, and the chunk framing is ours to write
    browser_framing: bool
    done: asyncio.Event = field(default_factory=asyncio.Event)
    stalled_since: float | None = None  # monotonic time its buffer first stayed full

    def payload(self, jpeg: bytes) -> bytes:
        part = mjpeg.browser_part(jpeg) if self.browser_framing else mjpeg.part(jpeg)
        return mjpeg.chunk(part) if self.chunked else part


class MjpegFanout:
    def __init__(
        self, camera: str, frames: Broadcast[RenderedFrame], stall_seconds: float = DEFAULT_STALL_SECONDS
    ) -> None:
        self.camera = camera
        self.stall_seconds = stall_seconds
        self.clients: set[StreamClient] = set()
        self._frames = frames

    def add(self, client: StreamClient) -> None:
        """Registers a client and sends it the newest frame at once: a card may not change for a while."""
        self.clients.add(client)
        if (latest := self._frames.latest) is not None:
            self._send(client, latest.jpeg)

    def remove(self, client: StreamClient) -> None:
        self.clients.discard(client)

    async def run(self) -> None:
        seen = 0
        try:
            while True:
                seen, frame = await self._frames.next_after(seen)
                for client in list(self.clients):
                    self._send(client, frame.jpeg)
        except BroadcastClosed:
            for client in self.clients:
                client.done.set()

    def _send(self, client: StreamClient, jpeg: bytes) -> None:
        transport = client.transport
        if transport.is_closing():
            self.remove(client)
            client.done.set()
        elif transport.get_write_buffer_size() > SLOW_CLIENT_BUFFER_BYTES:
            metrics.FRAMES_DROPPED.labels(self.camera, "mjpeg", "slow_client").inc()
            self._evict_if_stalled(client)
        else:
            client.stalled_since = None
            transport.write(client.payload(jpeg))

    def _evict_if_stalled(self, client: StreamClient) -> None:
        """A client that accepted nothing for VIEWER_CLIENT_STALL_SECONDS gives its place back."""
        now = time.monotonic()
        if client.stalled_since is None:
            client.stalled_since = now
        elif now - client.stalled_since > self.stall_seconds:
            metrics.MJPEG_EVICTED.inc()
            self.remove(client)
            client.transport.abort()  # its unsent buffer goes with it
            client.done.set()
