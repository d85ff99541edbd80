"""The gateway's state: the newest frame of each camera, fanned out to subscribers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property

from services.gateway import metrics
from shared.newest import Broadcast
from shared.wire import FrameMeta
from shared.wire_ws import to_ws_message


@dataclass(frozen=True)
class StoredFrame:
    meta: FrameMeta
    jpeg: bytes
    received_monotonic: float

    @cached_property
    def ws_message(self) -> bytes:
        """The WebSocket message of this frame, built once for all its subscribers (a JSON
        header and a copy of the JPEG per subscriber per frame was the fan-out's main cost)."""
        return to_ws_message(self.meta, self.jpeg)

    @property
    def age(self) -> float:
        return time.monotonic() - self.received_monotonic


@dataclass
class CameraFeed:
    camera: str
    frames: Broadcast[StoredFrame] = field(default_factory=Broadcast)


class TooManyCameras(Exception):
    pass


class CameraHub:
    """At most ``max_cameras`` feeds, so a client inventing camera ids cannot grow memory.

    Only (authenticated) ingest creates a feed; a subscriber to a camera that has not sent a
    frame yet waits for it to appear, so readers cannot use up the camera slots.
    """

    def __init__(self, max_cameras: int, idle_seconds: float) -> None:
        self.max_cameras = max_cameras
        self.idle_seconds = idle_seconds
        self.feeds: dict[str, CameraFeed] = {}
        self._added: Broadcast[str] = Broadcast()

    def feed(self, camera: str) -> CameraFeed | None:
        return self.feeds.get(camera)

    async def wait_for_feed(self, camera: str) -> CameraFeed:
        """The camera's feed, once its first frame has arrived (BroadcastClosed at shutdown)."""
        seen = 0
        while (feed := self.feeds.get(camera)) is None:
            seen, _ = await self._added.next_after(seen)
        return feed

    def store(self, meta: FrameMeta, jpeg: bytes, transport: str = "http") -> None:
        feed = self.feeds.get(meta.camera)
        if feed is None:
            if len(self.feeds) >= self.max_cameras:
                self.forget_idle()
            if len(self.feeds) >= self.max_cameras:
                raise TooManyCameras(
                    f"gateway already serves {self.max_cameras} cameras (GATEWAY_MAX_CAMERAS)"
                )
            feed = self.feeds[meta.camera] = CameraFeed(meta.camera)
            self._added.publish(meta.camera)
        previous = feed.frames.latest
        if previous is not None and meta.seq <= previous.meta.seq:
            # A producer that restarts counts from 1 again: accept it as the new truth.
            metrics.SEQUENCE_RESTARTS.labels(meta.camera).inc()
        feed.frames.publish(StoredFrame(meta, jpeg, time.monotonic()))
        metrics.FRAMES_RECEIVED.labels(meta.camera, transport).inc()

    def forget_idle(self) -> None:
        """Frees the slots of cameras silent for CAMERA_IDLE_SECONDS (ids invented once, say)."""
        for camera, feed in list(self.feeds.items()):
            frame = feed.frames.latest
            if frame is not None and frame.age > self.idle_seconds:
                self.forget(camera)

    def capacity(self) -> str:
        used = len(self.feeds)
        if used >= self.max_cameras:
            return f"camera slots full ({used}, GATEWAY_MAX_CAMERAS): new cameras get 429"
        return f"{used} of {self.max_cameras} camera slots used"

    def forget(self, camera: str) -> None:
        """Drops a camera's feed (its subscribers have gone): no stale frame outlives them."""
        feed = self.feeds.pop(camera, None)
        if feed is not None:
            feed.frames.close()

    def close(self) -> None:
        self._added.close()
        for feed in self.feeds.values():
            feed.frames.close()
