"""Following cameras upstream, whatever the transport: discover them, feed each one's pipeline.

The transport is an :class:`shared.upstream.Upstream` adapter (Redis or the gateway); this
module holds the one loop that discovers cameras and the one loop that feeds a pipeline.
"""

from __future__ import annotations

import asyncio
import logging

from services.viewer import metrics
from services.viewer.cameras import CameraPipelines
from services.viewer.pipeline import CameraPipeline
from services.viewer.settings import ViewerSettings
from shared.backoff import Backoff
from shared.health import CheckResult
from shared.logs import RateLimitedLog
from shared.tokens import bearer_headers
from shared.transport import TransportLink
from shared.upstream import CameraReader, Delivery, Upstream, UpstreamError, until_it_answers
from shared.upstream_gateway import GatewayUpstream
from shared.upstream_redis import RedisUpstream

log = logging.getLogger("framebus.viewer.follow")
malformed_log = RateLimitedLog(log)


def make_upstream(settings: ViewerSettings) -> Upstream:
    def malformed(reason: str, detail: str) -> None:
        metrics.MALFORMED.labels(settings.transport, reason).inc()
        malformed_log.warning("skipped a malformed %s frame: %s", settings.transport, detail, key=reason)

    if settings.transport == "redis":
        return RedisUpstream(settings.redis_url, malformed, settings.camera_idle_seconds)
    # With AUTH_SECRET the viewer mints its own short-lived read token for the gateway.
    auth = bearer_headers(settings.auth_secret_value, None, ["read:*"], subject="viewer")
    return GatewayUpstream(settings.gateway_url, malformed, auth)


class Follower:
    def __init__(self, settings: ViewerSettings, upstream: Upstream) -> None:
        self.settings = settings
        self.upstream = upstream
        self.transport = upstream.transport
        self.link = TransportLink(upstream.transport, "upstream", log)
        self._readers: dict[str, CameraReader] = {}

    async def discover_forever(self, pipelines: CameraPipelines) -> None:
        """Looks cameras up every VIEWER_DISCOVERY_SECONDS; each new one gets a pipeline."""
        backoff = Backoff()
        for camera in self.settings.pinned_cameras:
            pipelines.ensure(camera)
        while True:
            cameras = await until_it_answers(self.upstream.discover, self.link, backoff)
            for camera, age in cameras.items():
                if (pipeline := pipelines.ensure(camera)) is not None:
                    pipeline.note_upstream_age(age)
            await pipelines.expire_idle(keep={*self.settings.pinned_cameras, *cameras})
            await asyncio.sleep(self.settings.viewer_discovery_seconds)

    async def feed(self, pipeline: CameraPipeline) -> None:
        """Pulls a frame whenever the renderer has taken the last one; reconnects on failure."""
        backoff = Backoff()
        async with self.upstream.reader(pipeline.camera) as reader:
            self._readers[pipeline.camera] = reader
            try:
                while True:
                    await pipeline.wait_for_demand()
                    delivery = await self._pull(reader, backoff)
                    pipeline.receive(delivery.meta, delivery.jpeg, superseded=delivery.skipped)
            finally:
                self._readers.pop(pipeline.camera, None)

    async def _pull(self, reader: CameraReader, backoff: Backoff) -> Delivery:
        """The frame the renderer asked for: retried (it is still wanted) until upstream answers."""
        while True:
            try:
                delivery = await reader.pull()
            except UpstreamError as exc:
                await asyncio.sleep(self._reader_lost(reader.camera, exc, backoff.next_delay()))
                continue
            self.link.up()
            backoff.reset()
            return delivery

    def _reader_lost(self, camera: str, error: UpstreamError, delay: float) -> float:
        if any(reader.connected for reader in self._readers.values()):
            # Upstream still serves other cameras: this one's reader alone is down.
            log.warning(
                "camera %s: %s reader lost (%s); retrying in %.0fs", camera, self.transport, error, delay
            )
        else:
            self.link.down(str(error), retry_in=delay)
        return delay

    def readiness(self) -> CheckResult:
        # Discovery answering is the link's truth: an unwatched camera's reader asks nothing.
        return self.link.readiness()

    async def close(self) -> None:
        await self.upstream.close()
