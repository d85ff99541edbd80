"""Publishing frames like the capture service does: newest-wins, every drop counted.

:class:`AsyncPublisher` keeps one frame waiting at most; a newer frame replaces it (counted
``superseded``). While the transport is down, frames are dropped without trying
(``transport_down``) until the next retry on the backoff ladder; a refusal (HTTP 4xx) is
``rejected``. :class:`Publisher` runs the same in a background thread for plain code, and
:func:`publish` sends one frame and raises if it was not delivered.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from types import TracebackType

import aiohttp
import cv2
import numpy as np
from redis.exceptions import RedisError

from framebus._loop import LoopThread
from framebus.client import default_token, default_url
from framebus.errors import AuthRefused, PublishFailed, auth_refusal
from framebus.readers import transport_of
from shared.backoff import Backoff
from shared.newest import NewestSlot
from shared.redisconn import connect
from shared.registry import DEFAULT_IDLE_SECONDS
from shared.settings import CAMERA_ID_RULE, is_camera_id
from shared.stream_writer import StreamWriter
from shared.transport import describe_error
from shared.wire import FrameMeta, WireError, check_jpeg, to_headers

DEFAULT_MAXLEN = 8  # the capture service's REDIS_STREAM_MAXLEN default
DEFAULT_QUALITY = 80
DEFAULT_TIMEOUT_SECONDS = 2.0
MAX_ERROR_BODY = 200
CLOSE_FLUSH_SECONDS = 5.0

ImageOrJpeg = bytes | np.ndarray


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    meta: FrameMeta
    jpeg: bytes


@dataclass
class PublishStats:
    published: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> frames
    last_error: str = ""

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


class Rejected(Exception):
    """The gateway answered but refused the frame (4xx)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HTTP {status}: {text}")
        self.status = status


# --- encoding ---------------------------------------------------------------------------------

_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def jpeg_size(jpeg: bytes) -> tuple[int, int]:
    """(width, height) from the JPEG's start-of-frame marker, without decoding it."""
    check_jpeg(jpeg)
    pos = 2
    while pos + 4 <= len(jpeg):
        if jpeg[pos] != 0xFF:
            raise WireError("corrupt JPEG marker sequence")
        marker = jpeg[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = int.from_bytes(jpeg[pos + 2 : pos + 4], "big")
        if marker in _SOF_MARKERS and pos + 9 <= len(jpeg):
            height = int.from_bytes(jpeg[pos + 5 : pos + 7], "big")
            width = int.from_bytes(jpeg[pos + 7 : pos + 9], "big")
            return width, height
        pos += 2 + length
    raise WireError("no start-of-frame marker in the JPEG")


def encode(image_or_jpeg: ImageOrJpeg, quality: int = DEFAULT_QUALITY) -> tuple[bytes, int, int]:
    """(jpeg, width, height): JPEG bytes pass through (checked), an image is encoded."""
    if isinstance(image_or_jpeg, (bytes, bytearray, memoryview)):
        jpeg = bytes(image_or_jpeg)
        width, height = jpeg_size(jpeg)
        return jpeg, width, height
    image = image_or_jpeg
    if image.ndim not in (2, 3) or image.dtype != np.uint8:
        raise ValueError("image must be a uint8 array of shape (h, w) or (h, w, 3) (BGR, as OpenCV uses)")
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("OpenCV could not encode the image")
    return buffer.tobytes(), int(image.shape[1]), int(image.shape[0])


# --- transports -------------------------------------------------------------------------------


class _Sender(ABC):
    @abstractmethod
    async def send(self, frame: EncodedFrame) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...


class _RedisSender(_Sender):
    """The same writes as capture's Redis sink (shared/stream_writer.py)."""

    def __init__(self, url: str, camera: str, maxlen: int, timeout: float) -> None:
        self._redis = connect(url, socket_timeout=timeout, connect_timeout=timeout)
        self._writer = StreamWriter(self._redis, maxlen, DEFAULT_IDLE_SECONDS)

    async def send(self, frame: EncodedFrame) -> None:
        await self._writer.append(frame.meta, frame.jpeg)

    async def close(self) -> None:
        await self._redis.aclose()


class _HttpSender(_Sender):
    def __init__(self, url: str, camera: str, token: str | None, timeout: float) -> None:
        self._url = f"{url.rstrip('/')}/cameras/{camera}/frames"
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, frame: EncodedFrame) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)  # keep-alive for its life
        headers = {"Content-Type": "image/jpeg", **to_headers(frame.meta), **self._auth}
        async with self._session.post(self._url, data=frame.jpeg, headers=headers) as response:
            if response.status >= 500:
                raise aiohttp.ClientResponseError(
                    response.request_info, (), status=response.status, message=response.reason or ""
                )
            if response.status >= 300:
                text = (await response.content.read(MAX_ERROR_BODY)).decode("utf-8", "replace").strip()
                raise Rejected(response.status, text)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _make_sender(url: str, camera: str, token: str | None, maxlen: int, timeout: float) -> _Sender:
    if transport_of(url) == "redis":
        return _RedisSender(url, camera, maxlen, timeout)
    return _HttpSender(url, camera, token, timeout)


# --- the publisher ----------------------------------------------------------------------------


class AsyncPublisher:
    """Frames of one camera to Redis or a gateway; ``async with AsyncPublisher(...) as pub``.

    ``await pub.publish(image_or_jpeg)`` encodes (in an executor) and queues the frame,
    replacing one still waiting; it returns the frame's seq at once. ``await pub.flush()``
    waits until everything queued is sent or dropped.
    """

    def __init__(
        self,
        camera: str,
        url: str | None = None,
        *,
        token: str | None = None,
        maxlen: int = DEFAULT_MAXLEN,
        quality: int = DEFAULT_QUALITY,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        first_seq: int = 1,
    ) -> None:
        if not is_camera_id(camera):
            raise ValueError(CAMERA_ID_RULE)
        if not 1 <= maxlen <= 10000:
            raise ValueError("maxlen must be 1..10000 entries")
        self.camera = camera
        self.url = url or default_url()
        self.quality = quality
        self.stats = PublishStats()
        self._sender = _make_sender(
            self.url, camera, token if token is not None else default_token(), maxlen, timeout
        )
        self._next_seq = first_seq
        self._slot: NewestSlot[EncodedFrame] | None = None
        self._task: asyncio.Task[None] | None = None
        self._offered = 0
        self._handled = 0
        self._idle: asyncio.Event | None = None
        self._backoff = Backoff()
        self._retry_at = 0.0
        self._connected = True
        self.refused: str | None = None  # set when the gateway refused our token

    async def __aenter__(self) -> AsyncPublisher:
        self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def start(self) -> None:
        if self._task is None:
            self._slot = NewestSlot(lambda frame: self._finish(frame, "superseded"))
            self._idle = asyncio.Event()
            self._idle.set()
            self._task = asyncio.create_task(self._run(), name=f"framebus-publish-{self.camera}")

    async def publish(self, image_or_jpeg: ImageOrJpeg, captured_ns: int | None = None) -> int:
        """Queue a frame (a BGR/grey uint8 image, or JPEG bytes); returns its seq."""
        captured = time.time_ns() if captured_ns is None else captured_ns
        if isinstance(image_or_jpeg, np.ndarray):
            loop = asyncio.get_running_loop()
            encoded = await loop.run_in_executor(None, encode, image_or_jpeg, self.quality)
        else:
            encoded = encode(image_or_jpeg)
        return self.offer(*encoded, captured_ns=captured)

    def offer(self, jpeg: bytes, width: int, height: int, captured_ns: int) -> int:
        """Queue an encoded frame (in the publisher's loop); returns its seq."""
        self.start()
        assert self._slot is not None and self._idle is not None
        seq = self._next_seq
        self._next_seq += 1
        meta = FrameMeta(self.camera, seq, captured_ns, captured_ns, width, height)
        self._offered += 1
        self._idle.clear()
        self._slot.put(EncodedFrame(meta, jpeg))
        return seq

    async def flush(self) -> None:
        if self._idle is not None:
            await self._idle.wait()

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            try:
                async with asyncio.timeout(CLOSE_FLUSH_SECONDS):
                    await self.flush()
            except TimeoutError:
                pass
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._sender.close()

    async def _run(self) -> None:
        assert self._slot is not None
        while True:
            frame = await self._slot.get()
            if not self._connected and time.monotonic() < self._retry_at:
                self._finish(frame, "transport_down")
                continue
            self._finish(frame, await self._deliver(frame))

    async def _deliver(self, frame: EncodedFrame) -> str | None:
        """None when sent, else the drop reason."""
        try:
            await self._sender.send(frame)
        except Rejected as exc:
            self.stats.last_error = str(exc)
            if exc.status in (401, 403):
                self.refused = str(exc)
            return "rejected"
        except (TimeoutError, OSError, RedisError, aiohttp.ClientError) as exc:
            self.stats.last_error = describe_error(exc)
            if (refusal := auth_refusal(exc)) is not None:
                self.refused = refusal
                return "rejected"
            self._connected = False
            self._retry_at = time.monotonic() + self._backoff.next_delay()
            return "transport_error"
        self._connected = True
        self._backoff.reset()
        return None

    def _finish(self, frame: EncodedFrame, dropped: str | None) -> None:
        if dropped is None:
            self.stats.published += 1
        else:
            self.stats.dropped[dropped] = self.stats.dropped.get(dropped, 0) + 1
        self._handled += 1
        if self._handled >= self._offered and self._idle is not None:
            self._idle.set()


class Publisher:
    """:class:`AsyncPublisher` for plain code: its event loop runs in one background thread,
    which :meth:`close` (or leaving ``with``) stops. Encoding runs in the calling thread."""

    def __init__(
        self,
        camera: str,
        url: str | None = None,
        *,
        token: str | None = None,
        maxlen: int = DEFAULT_MAXLEN,
        quality: int = DEFAULT_QUALITY,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        first_seq: int = 1,
    ) -> None:
        self._publisher = AsyncPublisher(
            camera, url, token=token, maxlen=maxlen, quality=quality, timeout=timeout, first_seq=first_seq
        )
        self._thread = LoopThread(self, f"framebus-publisher-{camera}")
        self._thread.call(self._started())

    async def _started(self) -> None:
        self._publisher.start()

    @property
    def stats(self) -> PublishStats:
        return self._publisher.stats

    @property
    def refused(self) -> str | None:
        return self._publisher.refused

    def publish(self, image_or_jpeg: ImageOrJpeg, captured_ns: int | None = None) -> int:
        """Queue a frame (newest-wins); returns its seq without waiting for delivery."""
        captured = time.time_ns() if captured_ns is None else captured_ns
        jpeg, width, height = encode(image_or_jpeg, self._publisher.quality)
        return self._thread.call(self._offer(jpeg, width, height, captured))

    async def _offer(self, jpeg: bytes, width: int, height: int, captured_ns: int) -> int:
        return self._publisher.offer(jpeg, width, height, captured_ns)

    def flush(self, timeout: float = CLOSE_FLUSH_SECONDS) -> None:
        self._thread.call(self._publisher.flush(), timeout)

    def close(self) -> None:
        if self._thread.running:
            try:
                self._thread.call(self._publisher.aclose(), CLOSE_FLUSH_SECONDS * 2)
            finally:
                self._thread.stop()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def publish(
    camera: str,
    image_or_jpeg: ImageOrJpeg,
    url: str | None = None,
    *,
    token: str | None = None,
    seq: int | None = None,
    captured_ns: int | None = None,
    maxlen: int = DEFAULT_MAXLEN,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> int:
    """Send one frame now and return its seq; raises PublishFailed (AuthRefused for a refused
    token) if it was not delivered. ``seq`` defaults to the current time in milliseconds, so
    successive calls keep increasing. For a stream of frames, use :class:`Publisher`."""
    first_seq = time.time_ns() // 1_000_000 if seq is None else seq

    async def send_one() -> int:
        async with AsyncPublisher(
            camera, url, token=token, maxlen=maxlen, timeout=timeout, first_seq=first_seq
        ) as publisher:
            sent = await publisher.publish(image_or_jpeg, captured_ns)
            await publisher.flush()
        if publisher.refused is not None:
            raise AuthRefused(publisher.refused)
        if publisher.stats.published != 1:
            raise PublishFailed(f"frame {sent} of {camera} not delivered: {publisher.stats.last_error}")
        return sent

    return asyncio.run(send_one())
