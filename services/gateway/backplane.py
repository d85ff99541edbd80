"""GATEWAY_BACKPLANE=redis: the gateway as the Redis bus's HTTP/WebSocket edge."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import cast

from redis.exceptions import RedisError

from services.gateway import metrics
from services.gateway.bus import BusUnavailable, CameraEntry, GatewayFrames
from services.gateway.hub import CameraHub, StoredFrame
from services.gateway.settings import GatewaySettings
from shared.backoff import Backoff
from shared.demand import DemandSignal
from shared.health import CheckResult
from shared.logs import RateLimitedLog
from shared.metrics import MALFORMED
from shared.redisconn import entry_age
from shared.results import (
    RESULTS_MAXLEN,
    FrameResult,
    ResultError,
    newest_result,
    results_key,
    to_json,
    to_stream_fields as to_result_fields,
)
from shared.stream_writer import StreamWriter
from shared.tasks import BackgroundTasks
from shared.transport import TransportLink
from shared.upstream import UpstreamError, until_it_answers
from shared.upstream_redis import RedisUpstream, StreamEntry
from shared.wire import FrameMeta, WireError, from_stream_fields, stream_key

log = logging.getLogger("framebus.gateway.backplane")
malformed_log = RateLimitedLog(log)

PING_SECONDS = 1.0


def _malformed(reason: str, detail: str) -> None:
    MALFORMED.labels("redis", reason).inc()
    malformed_log.warning("skipped a malformed frame on the backplane: %s", detail, key=reason)


class RedisBackplane(GatewayFrames):
    def __init__(self, hub: CameraHub, settings: GatewaySettings) -> None:
        super().__init__(hub)
        self.upstream = RedisUpstream(settings.redis_url, _malformed, settings.camera_idle_seconds)
        self.link = TransportLink("redis", "backplane", log)
        self._writer = StreamWriter(
            self.upstream.client, settings.redis_stream_maxlen, settings.camera_idle_seconds
        )
        self._watchers: Counter[str] = Counter()
        # Cameras with local subscribers are wanted: capture on demand runs them at full rate.
        self._demand = DemandSignal(self.upstream.client)
        self._readers = BackgroundTasks()

    async def accept(self, meta: FrameMeta, jpeg: bytes) -> None:
        try:
            await self._writer.append(meta, jpeg, register=not self.link.connected)
        except (RedisError, OSError) as exc:
            self.link.down(exc)
            raise BusUnavailable(f"the Redis backplane is unavailable ({type(exc).__name__})") from exc
        self.link.up()
        metrics.FRAMES_RECEIVED.labels(meta.camera, "http").inc()

    async def latest(self, camera: str) -> StoredFrame | None:
        entries = await self._newest_entries([camera])
        return entries[0].frame

    async def cameras(self) -> list[CameraEntry]:
        try:
            cameras = list(await self.upstream.discover())
        except UpstreamError as exc:
            raise BusUnavailable(str(exc)) from exc
        return await self._newest_entries(cameras)

    async def _newest_entries(self, cameras: list[str]) -> list[CameraEntry]:
        try:
            async with self.upstream.client.pipeline(transaction=False) as pipe:
                for camera in cameras:
                    pipe.xrevrange(stream_key(camera), count=1)
                replies = cast(list[list[StreamEntry]], await pipe.execute())
        except (RedisError, OSError) as exc:
            self.link.down(exc)
            raise BusUnavailable(f"the Redis backplane is unavailable ({type(exc).__name__})") from exc
        self.link.up()
        return [
            CameraEntry(camera, _stored(camera, reply))
            for camera, reply in zip(cameras, replies, strict=True)
        ]

    async def append_result(self, result: FrameResult) -> None:
        """An algorithm's result posted over HTTP goes onto the bus like any other (BusUnavailable)."""
        try:
            await self.upstream.client.xadd(
                results_key(result.camera),
                to_result_fields(result),  # type: ignore[arg-type]
                maxlen=RESULTS_MAXLEN,
                approximate=False,
            )
        except (RedisError, OSError) as exc:
            self.link.down(exc)
            raise BusUnavailable(f"the Redis backplane is unavailable ({type(exc).__name__})") from exc

    async def newest_result(self, camera: str) -> tuple[bytes, float] | None:
        """(the result as JSON, its age in seconds) from the camera's results stream."""
        try:
            newest = await newest_result(self.upstream.client, camera)
        except (RedisError, OSError) as exc:
            raise BusUnavailable(f"the Redis backplane is unavailable ({type(exc).__name__})") from exc
        except ResultError:
            return None  # a malformed entry is no result to serve
        return None if newest is None else (to_json(newest[0]), newest[1])

    @contextlib.asynccontextmanager
    async def watching(self, camera: str) -> AsyncIterator[None]:
        """One Redis reader per camera, from the first local subscriber until the last leaves."""
        self._watchers[camera] += 1
        if self._watchers[camera] == 1:
            self._readers.start(f"backplane_{camera}", lambda: self._read(camera))
            await self._demand.refresh(self._watchers)
        try:
            yield
        finally:
            self._watchers[camera] -= 1
            if self._watchers[camera] == 0:
                del self._watchers[camera]
                await self._readers.cancel(f"backplane_{camera}")
                if camera not in self._watchers:  # nobody came back while the reader stopped
                    self.hub.forget(camera)  # no stale frame for the next subscriber

    async def _read(self, camera: str) -> None:
        backoff = Backoff()
        dropped = metrics.FRAMES_DROPPED.labels(camera, "backplane", "superseded")
        async with self.upstream.reader(camera) as reader:
            while True:
                delivery = await until_it_answers(reader.pull, self.link, backoff)
                if delivery.skipped:
                    dropped.inc(delivery.skipped)
                self.hub.store(delivery.meta, delivery.jpeg, transport="redis")

    def readiness(self) -> CheckResult:
        if not self.link.connected:
            return self.link.readiness()
        return CheckResult(True, f"Redis backplane connected, {len(self._watchers)} camera(s) watched here")

    def start(self) -> None:
        self._readers.start("backplane_ping", self._ping_forever)

    async def _ping_forever(self) -> None:
        """Readiness tells the truth between frames too: a PING every PING_SECONDS (and the
        watched cameras' demand markers refreshed)."""
        while True:
            try:
                await self.upstream.client.ping()
                self.link.up()
            except (RedisError, OSError) as exc:
                self.link.down(exc)
            await self._demand.refresh(self._watchers)
            await asyncio.sleep(PING_SECONDS)

    async def close(self) -> None:
        await self._readers.stop()
        await super().close()
        await self.upstream.close()


def _stored(camera: str, reply: list[StreamEntry]) -> StoredFrame | None:
    if not reply:
        return None
    entry_id, fields = reply[0]
    try:
        meta, jpeg = from_stream_fields(fields)
    except WireError as exc:
        _malformed("bad_entry", f"{camera}: {exc}")
        return None
    # The entry id starts with Redis's clock in ms: how long ago the frame reached the bus.
    return StoredFrame(meta, jpeg, time.monotonic() - entry_age(entry_id))
