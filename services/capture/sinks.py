"""Where encoded frames go: a Redis Stream and/or the HTTP gateway.

Each sink owns a newest-frame slot and one sender task, so a slow or absent transport drops
(and counts) its own frames without holding back the other one. While a transport is down
frames are dropped without trying, and reconnects follow the backoff ladder.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

import aiohttp
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.capture import metrics
from services.capture.pipelined import PipelinedAppender
from services.capture.settings import CaptureSettings
from shared.backoff import Backoff
from shared.logs import RateLimitedLog
from shared.newest import NewestSlot
from shared.redisconn import connect
from shared.stream_writer import StreamWriter
from shared.tokens import PUBLISH, bearer_headers
from shared.transport import TransportLink
from shared.upstream import stop_if_cancelled
from shared.wire import FrameMeta, to_headers

log = logging.getLogger("framebus.capture.sinks")

# A sink that has had no frame to send for this long checks its transport anyway (Redis: PING),
# so its readiness says whether the transport is reachable even while the source is down.
IDLE_PROBE_SECONDS = 1.0
# A sink with no new frame for this long collects the replies still due (pipelined Redis).
SETTLE_SECONDS = 0.1


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    meta: FrameMeta
    jpeg: bytes


class SinkRejected(Exception):
    """The transport answered but refused the frame (a 4xx from the gateway)."""


SINK_ERRORS = (SinkRejected, TimeoutError, OSError, RedisError, aiohttp.ClientError)


class FrameSink(ABC):
    transport: str
    probes_when_idle = False  # True when probe() can tell reachability without sending a frame

    def __init__(self, camera: str) -> None:
        self.camera = camera
        self.slot: NewestSlot[EncodedFrame] = NewestSlot(self._count_superseded)
        self.link = TransportLink(self.transport, "transport", log)
        self._publish_seconds = metrics.STAGE_SECONDS.labels(f"publish_{self.transport}")
        self._published_total = metrics.FRAMES_PUBLISHED.labels(camera, self.transport)
        self._backoff = Backoff()
        self._retry_at = 0.0
        self._drop_log = RateLimitedLog(log)

    @abstractmethod
    async def send(self, frame: EncodedFrame) -> None: ...

    async def probe(self) -> None:  # noqa: B027 - only sinks with probes_when_idle override it
        pass

    async def settle(self) -> None:  # noqa: B027 - only a sink with unanswered frames overrides it
        pass

    async def close(self) -> None:  # noqa: B027 - sinks without resources need nothing
        pass

    async def run(self) -> None:
        while True:
            stop_if_cancelled()  # a write's wait_for (Python 3.11) may have lost our cancellation
            frame = await self._next_frame()
            if frame is None:
                await self._probe_when_due()
                continue
            if not self.link.connected and time.monotonic() < self._retry_at:
                self._drop(frame, "transport_down")
                continue
            await self._deliver(frame)

    async def _next_frame(self) -> EncodedFrame | None:
        """The next frame, or None after IDLE_PROBE_SECONDS without one. A sink idle for
        SETTLE_SECONDS first collects the replies still due for the frames it sent."""
        try:
            async with asyncio.timeout(SETTLE_SECONDS):
                return await self.slot.get()
        except TimeoutError:
            await self.settle()
        try:
            async with asyncio.timeout(IDLE_PROBE_SECONDS if self.probes_when_idle else None):
                return await self.slot.get()
        except TimeoutError:
            return None

    async def _deliver(self, frame: EncodedFrame) -> None:
        started = time.perf_counter()
        try:
            await self.send(frame)
        except SINK_ERRORS as exc:
            self._failed(frame, exc)
            return
        self._published(started)

    def _published(self, started: float) -> None:
        self._publish_seconds.observe(time.perf_counter() - started)
        self._published_total.inc()
        self._backoff.reset()
        self.link.up()

    def _failed(self, frame: EncodedFrame, exc: BaseException) -> None:
        if isinstance(exc, SinkRejected):
            # Reachable but refusing (bad token, say): not ready, yet no reason to back off.
            self.link.down(str(exc))
            self._drop(frame, "rejected", str(exc))
            return
        if self.link.connected or time.monotonic() >= self._retry_at:
            # One backoff step per outage, not one per frame that was in flight when it began.
            delay = self._backoff.next_delay()
            self._retry_at = time.monotonic() + delay
            self.link.down(exc, retry_in=delay)
        self._drop(frame, "transport_error")

    async def _probe_when_due(self) -> None:
        if not self.link.connected and time.monotonic() < self._retry_at:
            return  # down and backing off: the retry ladder applies to probes too
        try:
            await self.probe()
        except (TimeoutError, OSError, RedisError) as exc:
            delay = self._backoff.next_delay()
            self._retry_at = time.monotonic() + delay
            self.link.down(exc, retry_in=delay)
            return
        self._backoff.reset()
        self.link.up()

    def _drop(self, frame: EncodedFrame, reason: str, detail: str = "") -> None:
        metrics.FRAMES_DROPPED.labels(self.camera, self.transport, reason).inc()
        if reason == "rejected":
            self._drop_log.warning("%s rejected frame %d: %s", self.transport, frame.meta.seq, detail)

    def _count_superseded(self, frame: EncodedFrame) -> None:
        metrics.FRAMES_DROPPED.labels(self.camera, self.transport, "superseded").inc()


class RedisSink(FrameSink):
    """XADDs to the camera's stream; on one server they are pipelined (see pipelined.py), on a
    cluster each waits for its reply (the cluster client routes and follows failovers)."""

    transport = "redis"
    probes_when_idle = True

    def __init__(self, settings: CaptureSettings) -> None:
        super().__init__(settings.camera_id)
        self._redis = connect(
            settings.redis_url,
            socket_timeout=settings.publish_timeout_seconds,
            connect_timeout=settings.publish_timeout_seconds,
        )
        self._writer = StreamWriter(self._redis, settings.redis_stream_maxlen, settings.camera_idle_seconds)
        self._pipelined: PipelinedAppender[tuple[EncodedFrame, float]] | None = None
        if isinstance(self._redis, aioredis.Redis):
            self._pipelined = PipelinedAppender(self._redis, self._writer, self._answered)

    async def send(self, frame: EncodedFrame) -> None:
        # After a failure Redis may have restarted empty: register again at once.
        await self._writer.append(frame.meta, frame.jpeg, register=not self.link.connected)

    async def _deliver(self, frame: EncodedFrame) -> None:
        if self._pipelined is None:
            await super()._deliver(frame)
            return
        sent = (frame, time.perf_counter())
        await self._pipelined.write(frame.meta, frame.jpeg, sent, register=not self.link.connected)

    def _answered(self, sent: tuple[EncodedFrame, float], error: BaseException | None) -> None:
        frame, started = sent
        if error is None:
            self._published(started)
        else:
            self._failed(frame, error)

    async def settle(self) -> None:
        if self._pipelined is not None:
            await self._pipelined.settle()

    async def probe(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        if self._pipelined is not None:
            await self._pipelined.close()
        await self._redis.aclose()


class HttpSink(FrameSink):
    transport = "http"

    def __init__(self, settings: CaptureSettings) -> None:
        super().__init__(settings.camera_id)
        self._url = f"{settings.gateway_url}/cameras/{settings.camera_id}/frames"
        # With AUTH_SECRET capture mints its own short-lived publish token for its camera;
        # the deprecated static GATEWAY_TOKEN is sent only when there is no secret.
        self._auth_headers = bearer_headers(
            settings.auth_secret_value,
            settings.gateway_token,
            [f"{PUBLISH}:{settings.camera_id}"],
            subject=f"capture-{settings.camera_id}",
        )
        self._timeout = aiohttp.ClientTimeout(total=settings.publish_timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, frame: EncodedFrame) -> None:
        if self._session is None:
            # One session for the life of the sink: keep-alive, no reconnect per frame.
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        headers = {"Content-Type": "image/jpeg", **to_headers(frame.meta), **self._auth_headers()}
        async with self._session.post(self._url, data=frame.jpeg, headers=headers) as response:
            if response.status >= 500:
                raise aiohttp.ClientResponseError(
                    response.request_info, (), status=response.status, message=response.reason or ""
                )
            if response.status >= 300:
                # Bounded and lenient: the body of an error is for a log line, nothing more.
                reason = (await response.content.read(200)).decode("utf-8", "replace").strip()
                raise SinkRejected(f"HTTP {response.status}: {reason}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def make_sinks(settings: CaptureSettings) -> list[FrameSink]:
    kinds = {"redis": RedisSink, "http": HttpSink}
    return [kinds[name](settings) for name in settings.transports]
