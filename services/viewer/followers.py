"""Following the cameras upstream: Redis Streams (XREAD) or the gateway's WebSockets."""

from __future__ import annotations

import asyncio
import functools
import logging
from abc import ABC, abstractmethod
from typing import cast

import aiohttp
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from services.viewer import metrics
from services.viewer.pipeline import CameraPipeline, CameraRegistry
from services.viewer.settings import ViewerSettings
from shared.auth import bearer_headers
from shared.backoff import Backoff
from shared.health import CheckResult
from shared.logs import RateLimitedLog
from shared.settings import is_camera_id
from shared.tasks import TASK_RESTARTS
from shared.transport import TransportLink, describe_error
from shared.wire import (
    CAMERAS_KEY,
    PULL_REQUEST,
    WS_HEARTBEAT_SECONDS,
    WireError,
    from_stream_fields,
    from_ws_message,
    stream_key,
)

log = logging.getLogger("framebus.viewer.follow")
malformed_log = RateLimitedLog(log)

StreamEntry = tuple[bytes, dict[bytes, bytes]]

XREAD_BLOCK_MS = 1000
XREAD_BATCH = 16
MAX_WS_MESSAGE_BYTES = 64 * 1024 * 1024


class Follower(ABC):
    transport: str

    def __init__(self, settings: ViewerSettings, registry: CameraRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self.link = TransportLink(self.transport, "upstream", log)

    @abstractmethod
    async def run(self) -> None: ...

    async def close(self) -> None:  # noqa: B027 - followers without resources need nothing
        pass

    def readiness(self) -> CheckResult:
        return self.link.readiness()

    def _malformed(self, reason: str, detail: str) -> None:
        metrics.MALFORMED.labels(self.transport, reason).inc()
        malformed_log.warning("skipped a malformed %s frame: %s", self.transport, detail)


class RedisFollower(Follower):
    """One reader per followed camera, pulling its stream when its renderer wants a frame.

    A reader fetches (XREAD BLOCK from the last id it saw) only once the renderer has taken
    the previous frame, so a viewer slower than the camera transfers and parses only frames
    it will show; whatever piled up meanwhile arrives in one reply and the newest entry wins.
    """

    transport = "redis"

    def __init__(self, settings: ViewerSettings, registry: CameraRegistry) -> None:
        super().__init__(settings, registry)
        self._redis = aioredis.Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=2.0,
            # A blocked XREAD legitimately waits XREAD_BLOCK_MS; anything much longer is a hang.
            socket_timeout=XREAD_BLOCK_MS / 1000 + 2.0,
            retry=Retry(NoBackoff(), 1),
        )
        self._readers: dict[str, asyncio.Task[None]] = {}

    async def run(self) -> None:
        """Discovers cameras every VIEWER_DISCOVERY_SECONDS and keeps a reader for each."""
        backoff = Backoff()
        try:
            while True:
                try:
                    await self._discover()
                except (RedisError, OSError) as exc:
                    self.link.down(exc, retry_in=(delay := backoff.next_delay()))
                    await asyncio.sleep(delay)
                    continue
                self.link.up()
                backoff.reset()
                for camera, pipeline in self.registry.pipelines.items():
                    if camera not in self._readers:
                        task = asyncio.create_task(self._read_camera(pipeline), name=f"xread_{camera}")
                        task.add_done_callback(functools.partial(self._reader_ended, camera))
                        self._readers[camera] = task
                await asyncio.sleep(self.settings.viewer_discovery_seconds)
        finally:
            readers = list(self._readers.values())
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)

    def _reader_ended(self, camera: str, task: asyncio.Task[None]) -> None:
        # Only a bug ends a reader; the next discovery round starts it again.
        self._readers.pop(camera, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("reading camera %s crashed; restarting", camera, exc_info=exc)
            TASK_RESTARTS.labels("read_camera").inc()

    async def _discover(self) -> None:
        for camera in self.settings.pinned_cameras:
            self.registry.ensure(camera)
        members = cast(set[bytes], await self._redis.smembers(CAMERAS_KEY))
        for raw in sorted(members):
            camera = raw.decode("ascii", "replace")
            if is_camera_id(camera):
                self.registry.ensure(camera)
            else:
                self._malformed("bad_camera", f"camera id {camera[:80]!r} in {CAMERAS_KEY}")

    async def _read_camera(self, pipeline: CameraPipeline) -> None:
        key = stream_key(pipeline.camera)
        last_id: bytes | None = None  # kept across reconnects: new entries' ids are larger
        backoff = Backoff()
        while True:
            try:
                if last_id is None:
                    last_id = await self._newest(pipeline, key)
                await pipeline.wait_for_demand()
                reply = await self._redis.xread({key: last_id}, count=XREAD_BATCH, block=XREAD_BLOCK_MS)
                for _, entries in cast(list[tuple[bytes, list[StreamEntry]]], reply or []):
                    last_id = await self._take(pipeline, key, entries)
                self.link.up()
                backoff.reset()
            except (RedisError, OSError) as exc:
                self.link.down(exc, retry_in=(delay := backoff.next_delay()))
                await asyncio.sleep(delay)

    async def _newest(self, pipeline: CameraPipeline, key: str, skipped: int = 0) -> bytes:
        """Hands over the stream's newest entry; returns its id ("0-0" for an empty stream,
        from which XREAD returns the first entry, whenever it comes)."""
        newest = cast(list[StreamEntry], await self._redis.xrevrange(key, count=1))
        if not newest:
            return b"0-0"
        self._deliver(pipeline, newest[0][1], skipped)
        return newest[0][0]

    async def _take(self, pipeline: CameraPipeline, key: str, entries: list[StreamEntry]) -> bytes:
        """Hands over the newest valid entry of an XREAD reply; returns the id to read after."""
        if len(entries) == XREAD_BATCH:
            # A full reply means more may be waiting behind it: skip straight to the newest.
            return await self._newest(pipeline, key, skipped=len(entries))
        # Newest first; an older entry is used only when every newer one is malformed.
        for index in range(len(entries) - 1, -1, -1):
            if self._deliver(pipeline, entries[index][1], skipped=index):
                break
        return entries[-1][0]

    def _deliver(self, pipeline: CameraPipeline, fields: dict[bytes, bytes], skipped: int = 0) -> bool:
        """Hands a stream entry to the pipeline; ``skipped`` older ones were passed over."""
        try:
            meta, jpeg = from_stream_fields(fields)
        except WireError as exc:
            self._malformed("bad_entry", f"{pipeline.camera}: {exc}")
            return False
        if meta.camera != pipeline.camera:
            self._malformed("camera_mismatch", f"entry for {meta.camera} in the stream of {pipeline.camera}")
            return False
        pipeline.receive(meta, jpeg, superseded=skipped)
        return True

    async def close(self) -> None:
        await self._redis.aclose()


class GatewayFollower(Follower):
    """One pull-mode WebSocket per followed camera: a frame is asked for when the renderer is free,
    and the gateway answers with the newest it has."""

    transport = "http"

    def __init__(self, settings: ViewerSettings, registry: CameraRegistry) -> None:
        super().__init__(settings, registry)
        self._session: aiohttp.ClientSession | None = None
        self._sockets: dict[str, asyncio.Task[None]] = {}
        self._connected_cameras: set[str] = set()
        # With AUTH_SECRET the viewer mints its own short-lived read token for the gateway
        # (a header, so it never lands in a URL or a log line).
        self._auth_headers = bearer_headers(settings.auth_secret_value, None, ["read:*"], subject="viewer")

    def readiness(self) -> CheckResult:
        camera = self.settings.camera_id
        if camera in self._connected_cameras:
            return CheckResult(True, f"subscribed to {camera}")
        return CheckResult(False, self.link.last_error)

    async def run(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=2.0))
        try:
            while True:
                for camera in [*self.settings.pinned_cameras, *await self._discover()]:
                    pipeline = self.registry.ensure(camera)
                    if pipeline is not None and camera not in self._sockets:
                        task = asyncio.create_task(self._follow_camera(pipeline), name=f"ws_{camera}")
                        task.add_done_callback(functools.partial(self._socket_task_ended, camera))
                        self._sockets[camera] = task
                await asyncio.sleep(self.settings.viewer_discovery_seconds)
        finally:
            for task in self._sockets.values():
                task.cancel()
            await asyncio.gather(*self._sockets.values(), return_exceptions=True)
            self._sockets.clear()
            await self._session.close()

    def _socket_task_ended(self, camera: str, task: asyncio.Task[None]) -> None:
        # Only a bug ends a socket task early; the next discovery round starts it again.
        self._sockets.pop(camera, None)
        self._connected_cameras.discard(camera)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("following camera %s crashed; restarting", camera, exc_info=exc)
            TASK_RESTARTS.labels("follow_camera").inc()

    async def _discover(self) -> list[str]:
        assert self._session is not None
        try:
            async with self._session.get(
                f"{self.settings.gateway_url}/cameras",
                timeout=aiohttp.ClientTimeout(total=2.0),
                headers=self._auth_headers(),
            ) as response:
                response.raise_for_status()
                body = await response.json()
            listed = body["cameras"] if isinstance(body, dict) else []
            cameras = [entry.get("camera") for entry in listed if isinstance(entry, dict)]
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            log.debug("camera discovery failed: %s", exc)
            return []
        for camera in cameras:
            if not is_camera_id(camera):
                self._malformed("bad_camera", f"camera id {str(camera)[:80]!r} in the gateway's list")
        valid = [c for c in cameras if is_camera_id(c)]
        return valid[: self.settings.viewer_max_cameras]

    async def _follow_camera(self, pipeline: CameraPipeline) -> None:
        assert self._session is not None
        # pull=1: the gateway sends a frame only when asked, so frames the renderer would
        # supersede are neither sent nor parsed (see docs/protocol.md).
        url = f"{self.settings.gateway_url}/cameras/{pipeline.camera}/ws?pull=1"
        backoff = Backoff()
        while True:
            try:
                async with self._session.ws_connect(
                    url,
                    heartbeat=WS_HEARTBEAT_SECONDS,
                    max_msg_size=MAX_WS_MESSAGE_BYTES,
                    compress=0,
                    headers=self._auth_headers(),
                ) as ws:
                    self._connected_cameras.add(pipeline.camera)
                    self.link.up()
                    backoff.reset()
                    log.info("subscribed to camera %s", pipeline.camera)
                    await self._pull_frames(pipeline, ws)
                error: BaseException | str = "gateway closed the WebSocket"
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                error = exc
            self._connected_cameras.discard(pipeline.camera)
            delay = backoff.next_delay()
            if self._connected_cameras:
                # The gateway still serves other cameras: this one's socket alone is down.
                text = describe_error(error)
                log.warning("camera %s: WebSocket lost (%s); retrying in %.0fs", pipeline.camera, text, delay)
            else:
                self.link.down(error, retry_in=delay)
            await asyncio.sleep(delay)

    async def _pull_frames(self, pipeline: CameraPipeline, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Asks for a frame whenever the renderer has taken the last one; returns when the socket ends."""
        while True:
            await pipeline.wait_for_demand()
            await ws.send_str(PULL_REQUEST)
            message = await ws.receive()  # pings and pongs are answered inside aiohttp
            if message.type == aiohttp.WSMsgType.BINARY:
                self._on_message(pipeline, message.data)
            elif message.type != aiohttp.WSMsgType.TEXT:
                return  # CLOSE, CLOSING, CLOSED or ERROR

    def _on_message(self, pipeline: CameraPipeline, data: bytes) -> None:
        try:
            meta, jpeg = from_ws_message(data)
        except WireError as exc:
            self._malformed("bad_message", str(exc))
            return
        if meta.camera != pipeline.camera:
            self._malformed("camera_mismatch", f"frame of {meta.camera} on the socket of {pipeline.camera}")
            return
        pipeline.receive(meta, jpeg)


def make_follower(settings: ViewerSettings, registry: CameraRegistry) -> Follower:
    return (
        RedisFollower(settings, registry)
        if settings.transport == "redis"
        else GatewayFollower(settings, registry)
    )
