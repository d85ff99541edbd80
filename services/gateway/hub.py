"""The gateway's state: the newest frame of each camera, fanned out to subscribers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from services.gateway import metrics
from shared.health import Freshness
from shared.newest import Broadcast
from shared.wire import FrameMeta


@dataclass(frozen=True, slots=True)
class StoredFrame:
    meta: FrameMeta
    jpeg: bytes
    received_monotonic: float

    @property
    def age(self) -> float:
        return time.monotonic() - self.received_monotonic


@dataclass
class CameraFeed:
    camera: str
    frames: Broadcast[StoredFrame] = field(default_factory=Broadcast)
    freshness: Freshness = field(default_factory=Freshness)


class TooManyCameras(Exception):
    pass


class CameraHub:
    """At most ``max_cameras`` feeds, so a client inventing camera ids cannot grow memory."""

    def __init__(self, max_cameras: int) -> None:
        self.max_cameras = max_cameras
        self.feeds: dict[str, CameraFeed] = {}

    def feed(self, camera: str, create: bool = False) -> CameraFeed | None:
        feed = self.feeds.get(camera)
        if feed is None and create:
            if len(self.feeds) >= self.max_cameras:
                raise TooManyCameras(
                    f"gateway already serves {self.max_cameras} cameras (GATEWAY_MAX_CAMERAS)"
                )
            feed = self.feeds[camera] = CameraFeed(camera)
        return feed

    def store(self, meta: FrameMeta, jpeg: bytes) -> None:
        feed = self.feed(meta.camera, create=True)
        assert feed is not None
        previous = feed.frames.latest
        if previous is not None and meta.seq <= previous.meta.seq:
            # A producer that restarts counts from 1 again: accept it as the new truth.
            metrics.SEQUENCE_RESTARTS.labels(meta.camera).inc()
        feed.frames.publish(StoredFrame(meta, jpeg, time.monotonic()))
        feed.freshness.mark()
        metrics.FRAMES_RECEIVED.labels(meta.camera, "http").inc()

    def close(self) -> None:
        for feed in self.feeds.values():
            feed.frames.close()
