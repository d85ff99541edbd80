"""Subscribing to a camera: one object that is both a plain and an async iterator of frames."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import weakref
from collections.abc import AsyncIterator, Generator, Iterator
from dataclasses import dataclass, field
from types import TracebackType

from framebus.errors import AuthRefused, CameraNotFound, FramebusError, NoFrames, auth_refusal
from framebus.frames import Frame
from framebus.readers import (
    GroupRedisReader,
    OrderedRedisReader,
    consumer_name,
    open_upstream,
    transport_of,
)
from shared.backoff import Backoff
from shared.settings import CAMERA_ID_RULE, is_camera_id
from shared.upstream import CameraReader, Delivery, Upstream, UpstreamError
from shared.upstream_gateway import GatewayCameraReader, GatewayUpstream
from shared.upstream_redis import RedisUpstream

log = logging.getLogger("framebus.client")

DEFAULT_URL = "redis://localhost:6379/0"
DEFAULT_TIMEOUT_SECONDS = 10.0
# Reconnects climb 0.2 s, 0.5 s, 1 s, 2 s, 5 s: an algorithm wants its frames back quickly.
RECONNECT_LADDER = (0.2, 0.5, 1.0, 2.0, 5.0)
DISCOVERY_TIMEOUT_SECONDS = 2.0


def default_url() -> str:
    """``FRAMEBUS_URL``, else ``REDIS_URL``, else a local Redis."""
    return os.environ.get("FRAMEBUS_URL") or os.environ.get("REDIS_URL") or DEFAULT_URL


def default_token() -> str | None:
    """``FRAMEBUS_TOKEN``, else ``GATEWAY_TOKEN`` (what the capture service sends), else none."""
    return os.environ.get("FRAMEBUS_TOKEN") or os.environ.get("GATEWAY_TOKEN") or None


@dataclass
class SubscriptionStats:
    """Running totals of one subscription (read them at any time, e.g. for a metrics gauge)."""

    frames: int = 0
    skipped: int = 0  # superseded (newest-wins) or lost upstream (gaps in seq)
    malformed: int = 0
    reconnects: int = 0
    lag_seconds: float = 0.0  # capture → delivery of the last frame
    last_error: str = ""
    malformed_reasons: dict[str, int] = field(default_factory=dict)


class Subscription:
    """Frames of one camera; iterate it with ``for`` or ``async for``, then close it.

    Use :func:`subscribe` to make one. Closing happens by itself when a ``for`` loop ends
    (``break`` included) or when used as a (async) context manager.
    """

    def __init__(
        self,
        camera: str,
        url: str | None = None,
        *,
        newest: bool = True,
        group: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT_SECONDS,
        scale: int = 1,
        grey: bool = False,
        token: str | None = None,
    ) -> None:
        if not is_camera_id(camera):
            raise ValueError(CAMERA_ID_RULE)
        self.url = url or default_url()
        self.transport = transport_of(self.url)
        if group is not None:
            if self.transport != "redis":
                raise ValueError("worker pools (group=...) need a Redis url (no groups in a gateway)")
            if not is_camera_id(group):
                raise ValueError("group name must match [A-Za-z0-9_-]{1,64}")
        if scale not in (1, 2, 4, 8):
            raise ValueError(f"scale must be 1, 2, 4 or 8, not {scale!r}")
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be positive seconds, or None to wait forever")
        self.camera = camera
        self.newest = newest
        self.group = group
        self.timeout = timeout
        self.scale = scale
        self.grey = grey
        self.token = token if token is not None else default_token()
        self.stats = SubscriptionStats()
        self._upstream: Upstream | None = None
        self._reader: CameraReader | None = None
        self._last_seq: int | None = None
        self._backoff = Backoff(RECONNECT_LADDER)
        self._plain: weakref.ref[Generator[Frame, None, None]] | None = None

    # --- async use ---------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Frame]:
        return self

    async def __anext__(self) -> Frame:
        return await self.next_frame()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def next_frame(self) -> Frame:
        """The next frame; raises NoFrames/CameraNotFound after ``timeout`` s without one,
        AuthRefused at once when the credentials are refused."""
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            reader = self._open()
            remaining = None if deadline is None else deadline - time.monotonic()
            try:
                async with asyncio.timeout(remaining):
                    delivery = await reader.pull()
            except TimeoutError:
                raise await self._no_frames() from None
            except UpstreamError as exc:
                await self._lost(exc, deadline)
                continue
            self._backoff.reset()
            return self._frame(delivery)

    async def aclose(self) -> None:
        reader, self._reader = self._reader, None
        upstream, self._upstream = self._upstream, None
        if reader is not None:
            await reader.close()
        if upstream is not None:
            await upstream.close()

    def _open(self) -> CameraReader:
        if self._reader is not None:
            return self._reader
        if self._upstream is None:
            self._upstream = open_upstream(self.url, self.token, self._malformed)
        upstream = self._upstream
        if self.group is not None:
            assert isinstance(upstream, RedisUpstream)
            self._reader = GroupRedisReader(upstream, self.camera, self.group, consumer_name())
        elif self.newest:
            self._reader = upstream.reader(self.camera)
        elif isinstance(upstream, RedisUpstream):
            self._reader = OrderedRedisReader(upstream, self.camera)
        else:
            assert isinstance(upstream, GatewayUpstream)
            self._reader = GatewayCameraReader(upstream, self.camera, pull=False)
        return self._reader

    def _frame(self, delivery: Delivery) -> Frame:
        skipped = delivery.skipped
        seq = delivery.meta.seq
        if self.group is None and self._last_seq is not None and seq > self._last_seq + 1:
            # Gaps in seq are frames this subscriber never saw (in a pool, other workers see
            # them, so there only the reader's own count is used).
            skipped = max(skipped, seq - self._last_seq - 1)
        self._last_seq = seq
        frame = Frame(delivery.meta, delivery.jpeg, skipped, scale=self.scale, grey=self.grey)
        self.stats.frames += 1
        self.stats.skipped += skipped
        self.stats.lag_seconds = frame.lag_seconds
        return frame

    async def _lost(self, error: UpstreamError, deadline: float | None) -> None:
        refusal = auth_refusal(error)
        if refusal is not None:
            await self.aclose()
            raise AuthRefused(f"{self.url}: {refusal}") from error
        self.stats.reconnects += 1
        self.stats.last_error = str(error)
        delay = self._backoff.next_delay()
        if deadline is not None:
            delay = max(0.0, min(delay, deadline - time.monotonic()))
        log.warning("camera %s: %s; retrying in %.1fs", self.camera, error, delay)
        await asyncio.sleep(delay)

    async def _no_frames(self) -> FramebusError:
        assert self.timeout is not None
        upstream = self._upstream
        if upstream is None:
            return NoFrames(self.camera, self.timeout, "not connected")
        try:
            async with asyncio.timeout(DISCOVERY_TIMEOUT_SECONDS):
                cameras = await upstream.discover()
        except (UpstreamError, TimeoutError) as exc:
            refusal = auth_refusal(exc) if isinstance(exc, UpstreamError) else None
            if refusal is not None:
                return AuthRefused(f"{self.url}: {refusal}")
            reason = f"upstream unreachable ({self.stats.last_error or exc})"
            return NoFrames(self.camera, self.timeout, reason)
        if self.camera not in cameras:
            known = ", ".join(list(cameras)[:10]) or "none"
            return CameraNotFound(self.camera, self.timeout, f"unknown camera (known: {known})")
        return NoFrames(self.camera, self.timeout, "the camera is known but sent nothing")

    def _malformed(self, reason: str, detail: str) -> None:
        self.stats.malformed += 1
        self.stats.malformed_reasons[reason] = self.stats.malformed_reasons.get(reason, 0) + 1
        log.warning("skipped a malformed frame (%s): %s", reason, detail)

    # --- plain use ---------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Frame]:
        """Frames from a private event loop in this thread; the loop and every socket are closed
        when the ``for`` loop is left (break, exception, or the iterator being collected), by
        ``close()``, or on leaving ``with``. Not for code already inside an event loop: use
        ``async for`` there."""
        self.close()  # one plain iteration at a time
        frames = self._plain_frames()
        # Weak: a strong reference would keep an abandoned iterator alive until the next GC.
        self._plain = weakref.ref(frames)
        return frames

    def _plain_frames(self) -> Generator[Frame, None, None]:
        loop = asyncio.new_event_loop()
        try:
            while True:
                yield loop.run_until_complete(self.next_frame())
        finally:
            try:
                loop.run_until_complete(self.aclose())
            finally:
                loop.close()

    def close(self) -> None:
        """Ends plain iteration now, closing its loop and sockets (async use: ``aclose``)."""
        frames = self._plain() if self._plain is not None else None
        self._plain = None
        if frames is not None:
            frames.close()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def subscribe(
    camera: str,
    url: str | None = None,
    *,
    newest: bool = True,
    group: str | None = None,
    timeout: float | None = DEFAULT_TIMEOUT_SECONDS,
    scale: int = 1,
    grey: bool = False,
    token: str | None = None,
) -> Subscription:
    """Frames of ``camera``, for ``for frame in subscribe(...)`` or ``async for``.

    url: ``redis://``, ``rediss://`` or ``unix://`` reads the Redis bus; ``http(s)://`` a
        gateway's WebSocket. Defaults to ``FRAMEBUS_URL``, then ``REDIS_URL``.
    newest: True (default) hands over the newest frame each time you ask, ``frame.skipped``
        counting those passed over; False gives every frame in order, gaps counted in
        ``frame.skipped``.
    group: a worker-pool name (Redis only): every process subscribing with the same group
        gets a share of the frames, none twice. Without it, each subscriber sees every frame.
    timeout: seconds to wait for a frame before NoFrames (CameraNotFound when upstream does
        not know the camera); None waits forever. Reconnects with backoff meanwhile.
    scale, grey: defaults for ``frame.image()`` (decode at 1/2, 1/4, 1/8; one channel).
    token: the gateway's bearer token; defaults to ``FRAMEBUS_TOKEN``, then ``GATEWAY_TOKEN``.
    """
    return Subscription(
        camera, url, newest=newest, group=group, timeout=timeout, scale=scale, grey=grey, token=token
    )
