"""Where the gateway keeps frames: in its own memory, or on the Redis bus (GATEWAY_BACKPLANE=redis).

Either way the :class:`CameraHub` fans a camera's newest frame out to this gateway's
WebSocket subscribers. In memory, ingest stores straight into the hub. With the backplane,
ingest only appends to the camera's Redis stream (as capture does), and one Redis reader per
camera with local subscribers stores into the hub: so frames from capture, `redis-cli` or
another gateway replica reach every subscriber, and nothing is written twice or loops back.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass

from services.gateway.hub import CameraHub, StoredFrame
from shared.health import CheckResult
from shared.wire import FrameMeta


class BusUnavailable(Exception):
    """The backplane cannot take the frame now (Redis down): the producer should retry."""


@dataclass(frozen=True, slots=True)
class CameraEntry:
    camera: str
    frame: StoredFrame | None


class GatewayFrames(ABC):
    def __init__(self, hub: CameraHub) -> None:
        self.hub = hub

    @abstractmethod
    async def accept(self, meta: FrameMeta, jpeg: bytes) -> None:
        """Takes an ingested frame (TooManyCameras, BusUnavailable)."""

    @abstractmethod
    async def latest(self, camera: str) -> StoredFrame | None: ...

    @abstractmethod
    async def cameras(self) -> list[CameraEntry]: ...

    @contextlib.asynccontextmanager
    async def watching(self, camera: str) -> AsyncIterator[None]:
        """While a local subscriber watches the camera."""
        yield

    def readiness(self) -> CheckResult:
        return CheckResult(True, f"accepting frames; {self.hub.capacity()}")

    async def close(self) -> None:
        self.hub.close()


class LocalFrames(GatewayFrames):
    """The newest frame of each camera in this process only (no backplane)."""

    async def accept(self, meta: FrameMeta, jpeg: bytes) -> None:
        self.hub.store(meta, jpeg)

    async def latest(self, camera: str) -> StoredFrame | None:
        feed = self.hub.feed(camera)
        return feed.frames.latest if feed else None

    async def cameras(self) -> list[CameraEntry]:
        self.hub.forget_idle()
        return [CameraEntry(camera, feed.frames.latest) for camera, feed in sorted(self.hub.feeds.items())]
