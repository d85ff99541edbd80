"""Reading cameras from the Redis bus: the registry set and one stream per camera."""

from __future__ import annotations

import time
from typing import cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from shared.probed_reads import ProbedConnection
from shared.redisconn import connect
from shared.registry import REGISTRY_KEY, recent_cameras
from shared.settings import is_camera_id
from shared.transport import describe_error
from shared.upstream import CameraReader, Delivery, MalformedHandler, Upstream, UpstreamError
from shared.wire import WireError, from_stream_fields, stream_key

StreamEntry = tuple[bytes, dict[bytes, bytes]]

XREAD_BLOCK_MS = 1000
XREAD_BATCH = 16
# A blocked XREAD legitimately waits XREAD_BLOCK_MS; anything much longer is a hang.
SOCKET_TIMEOUT_SECONDS = XREAD_BLOCK_MS / 1000 + 2.0
EMPTY_STREAM_ID = b"0-0"  # XREAD from here returns the first entry, whenever it comes


class RedisUpstream(Upstream):
    transport = "redis"

    def __init__(self, url: str, on_malformed: MalformedHandler, idle_seconds: float) -> None:
        super().__init__(on_malformed)
        self.client = connect(url, socket_timeout=SOCKET_TIMEOUT_SECONDS)
        self.idle_seconds = idle_seconds

    async def discover(self) -> dict[str, float | None]:
        """Cameras that published within CAMERA_IDLE_SECONDS, with the registry's age of each."""
        try:
            members = await recent_cameras(self.client, self.idle_seconds)
        except (RedisError, OSError) as exc:
            raise UpstreamError(describe_error(exc)) from exc
        cameras: dict[str, float | None] = {}
        now = time.time()
        for raw, seen in sorted(members):
            camera = raw.decode("ascii", "replace")
            if is_camera_id(camera):
                cameras[camera] = max(0.0, now - seen)
            else:
                self.on_malformed("bad_camera", f"camera id {camera[:80]!r} in {REGISTRY_KEY}")
        return cameras

    def reader(self, camera: str) -> RedisCameraReader:
        return RedisCameraReader(self, camera)

    async def close(self) -> None:
        await self.client.aclose()


class RedisCameraReader(CameraReader):
    """XREAD from the last id seen; a reply that may hide more entries skips to the newest."""

    def __init__(self, upstream: RedisUpstream, camera: str) -> None:
        super().__init__(camera, upstream.on_malformed)
        self._redis = upstream.client
        self._key = stream_key(camera)
        self._last_id: bytes | None = None  # kept across reconnects: new entries' ids are larger
        # Blocking reads on a probed connection of their own (see shared/probed_reads.py); a
        # cluster client routes each read to the camera's master itself, unprobed.
        self._probed = ProbedConnection(self._redis) if isinstance(self._redis, aioredis.Redis) else None

    async def pull(self) -> Delivery:
        try:
            delivery = await self._pull()
        except (RedisError, OSError) as exc:
            self.connected = False
            raise UpstreamError(describe_error(exc)) from exc
        return delivery

    async def _pull(self) -> Delivery:
        if self._last_id is None:
            # The first pull hands over what the stream holds now, if anything.
            delivery = await self._newest(skipped=0)
            if delivery is not None:
                return delivery
        while True:
            assert self._last_id is not None
            reply = await self._xread(self._last_id)
            self.connected = True
            for _, entries in reply:
                delivery = await self._take(entries)
                if delivery is not None:
                    return delivery

    async def _xread(self, last_id: bytes) -> list[tuple[bytes, list[StreamEntry]]]:
        """Up to XREAD_BATCH entries after ``last_id``, waiting up to XREAD_BLOCK_MS for one."""
        command = ("XREAD", "COUNT", XREAD_BATCH, "BLOCK", XREAD_BLOCK_MS, "STREAMS", self._key, last_id)
        return await self._read_stream(*command)

    async def _read_stream(self, *command: str | bytes | int) -> list[tuple[bytes, list[StreamEntry]]]:
        """An XREAD or XREADGROUP of this camera's stream (``self._key``, which ``command`` names)."""
        if self._probed is not None:
            reply = await self._probed.call(*command)
        else:
            # These commands' keys move with their arguments, so redis-py would ask a node for
            # them (COMMAND GETKEYS, twice) before every read. The key's master is known: ask it.
            # A failover surfaces as an error here; the client has reloaded its slot map by
            # the next read.
            cluster = cast(RedisCluster, self._redis)
            reply = await cluster.execute_command(*command, target_nodes=cluster.get_node_from_key(self._key))
        return cast(list[tuple[bytes, list[StreamEntry]]], reply or [])

    async def close(self) -> None:
        if self._probed is not None:
            await self._probed.close()

    async def _newest(self, skipped: int) -> Delivery | None:
        newest = cast(list[StreamEntry], await self._redis.xrevrange(self._key, count=1))
        self.connected = True
        if not newest:
            self._last_id = EMPTY_STREAM_ID
            return None
        self._last_id = newest[0][0]
        return self._parse(newest[0][1], skipped)

    async def _take(self, entries: list[StreamEntry]) -> Delivery | None:
        """The newest valid entry of an XREAD reply (None when every one is malformed)."""
        if len(entries) == XREAD_BATCH:
            # A full reply means more may be waiting behind it: skip straight to the newest.
            return await self._newest(skipped=len(entries))
        self._last_id = entries[-1][0]
        # Newest first; an older entry is used only when every newer one is malformed.
        for index in range(len(entries) - 1, -1, -1):
            if (delivery := self._parse(entries[index][1], skipped=index)) is not None:
                return delivery
        return None

    def _parse(self, fields: dict[bytes, bytes], skipped: int) -> Delivery | None:
        try:
            meta, jpeg = from_stream_fields(fields)
        except WireError as exc:
            self._on_malformed("bad_entry", f"{self.camera}: {exc}")
            return None
        if not self._accept(meta, "the stream"):
            return None
        return Delivery(meta, jpeg, skipped)
