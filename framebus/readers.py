"""Transport choice and the reading modes the shared adapters do not have.

The newest-wins readers are the services' own (:mod:`shared.upstream_redis`,
:mod:`shared.upstream_gateway`). This module adds, on the same :class:`CameraReader`
interface: every frame in order (Redis: XREAD without skipping; gateway: the WebSocket's push
mode), a Redis consumer-group reader for worker pools, and a gateway upstream that sends a token.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections import deque
from typing import cast

from redis.exceptions import RedisError, ResponseError

from shared.registry import DEFAULT_IDLE_SECONDS
from shared.upstream import Delivery, MalformedHandler, Upstream
from shared.upstream_gateway import (
    GatewayUpstream,
)
from shared.upstream_redis import (
    EMPTY_STREAM_ID,
    XREAD_BATCH,
    XREAD_BLOCK_MS,
    RedisCameraReader,
    RedisUpstream,
    StreamEntry,
)

REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")
HTTP_SCHEMES = ("http://", "https://")


def transport_of(url: str) -> str:
    """``"redis"`` or ``"http"``, chosen by the URL's scheme exactly as the services choose."""
    if url.startswith(REDIS_SCHEMES):
        return "redis"
    if url.startswith(HTTP_SCHEMES):
        return "http"
    schemes = ", ".join((*REDIS_SCHEMES, *HTTP_SCHEMES))
    raise ValueError(f"url must start with one of {schemes} (got {url!r})")


def open_upstream(url: str, token: str | None, on_malformed: MalformedHandler) -> Upstream:
    if transport_of(url) == "redis":
        return RedisUpstream(url, on_malformed, DEFAULT_IDLE_SECONDS)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return GatewayUpstream(url, on_malformed, lambda: headers)


class _RedisStreamReader(RedisCameraReader):
    """The Redis adapter's connection handling and entry parsing, with another way to read."""

    async def _pull(self) -> Delivery:
        raise NotImplementedError


class OrderedRedisReader(_RedisStreamReader):
    """Every entry of the stream, oldest first, starting at the newest one when opened.

    Nothing is skipped here; entries trimmed by MAXLEN before this reader got to them show
    up as gaps in ``seq``, which the subscription counts.
    """

    def __init__(self, upstream: RedisUpstream, camera: str) -> None:
        super().__init__(upstream, camera)
        self._last_id: bytes | None = None  # kept across reconnects
        self._pending: deque[StreamEntry] = deque()

    async def _pull(self) -> Delivery:
        while True:
            while self._pending:
                entry_id, fields = self._pending.popleft()
                self._last_id = entry_id
                if (delivery := self._parse(fields, skipped=0)) is not None:
                    return delivery
            if self._last_id is None:
                newest = cast(list[StreamEntry], await self._redis.xrevrange(self._key, count=1))
                self.connected = True
                if newest:
                    self._pending.append(newest[0])
                    continue
                self._last_id = EMPTY_STREAM_ID
            reply = await self._xread(self._last_id)
            self.connected = True
            for _, entries in reply:
                self._pending.extend(entries)


def consumer_name() -> str:
    """Unique per process and subscription: host, pid and a random suffix."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(3)}"


class GroupRedisReader(_RedisStreamReader):
    """One worker of a pool: Redis hands each entry to one consumer of the group.

    Entries are acknowledged as soon as they are read (at-most-once: a worker that dies
    loses only the frame it was working on, and no pending list grows). When several entries
    arrive at once, all are acknowledged and only the newest is delivered: a pool that falls
    behind skips stale frames instead of working through a backlog.
    """

    def __init__(self, upstream: RedisUpstream, camera: str, group: str, consumer: str) -> None:
        super().__init__(upstream, camera)
        self.group = group
        self.consumer = consumer
        self._group_ready = False

    async def _ensure_group(self) -> None:
        try:
            # "$": a new pool starts with the frames that arrive from now on.
            await self._redis.xgroup_create(self._key, self.group, id="$", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def _read(self, block: int | None) -> list[StreamEntry]:
        while True:
            if not self._group_ready:
                await self._ensure_group()
            waiting = ("BLOCK", block) if block is not None else ()
            command = ("XREADGROUP", "GROUP", self.group, self.consumer, "COUNT", XREAD_BATCH, *waiting)
            try:
                batches = await self._read_stream(*command, "STREAMS", self._key, ">")
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                self._group_ready = False  # Redis restarted empty, or the stream was deleted
                continue
            self.connected = True
            entries = [entry for _, batch in batches for entry in batch]
            if entries:
                await self._redis.xack(self._key, self.group, *[entry_id for entry_id, _ in entries])
            return entries

    async def _pull(self) -> Delivery:
        skipped = 0
        while True:
            entries = await self._read(block=XREAD_BLOCK_MS)
            # A full batch may hide more: take whatever else is waiting, without blocking.
            while len(entries) == XREAD_BATCH:
                more = await self._read(block=None)
                if not more:
                    break
                skipped += len(entries)
                entries = more
            for index in range(len(entries) - 1, -1, -1):
                if (delivery := self._parse(entries[index][1], skipped + index)) is not None:
                    return delivery
            skipped += len(entries)

    async def close(self) -> None:
        # Tidy the group's consumer list; a worker that crashed leaves an idle, empty entry.
        with contextlib.suppress(RedisError, OSError):
            await self._redis.xgroup_delconsumer(self._key, self.group, self.consumer)
        await super().close()
