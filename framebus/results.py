"""Publishing what an algorithm found, and reading the newest results of a camera.

Results go to the Redis Stream ``framebus:results:<camera>`` (MAXLEN exact, like frames) or,
with an http(s):// url, to the gateway's ``POST /cameras/{camera}/results``. The viewer draws
the newest ones over the live picture. Unlike frames, a result is sent when published and a
failure raises: the algorithm decides whether to carry on.
"""

from __future__ import annotations

import atexit
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

import aiohttp
from redis.exceptions import RedisError

from framebus._loop import LoopThread
from framebus.client import default_token, default_url
from framebus.errors import AuthRefused, PublishFailed, auth_refusal
from framebus.frames import Frame
from framebus.readers import transport_of
from shared.redisconn import connect
from shared.results import (
    RESULTS_MAXLEN,
    Box,
    FrameResult,
    ResultError,
    from_json,
    make_boxes,
    newest_result,
    results_key,
    to_json,
    to_stream_fields,
)
from shared.transport import describe_error

DEFAULT_TIMEOUT_SECONDS = 2.0
MAX_ERROR_BODY = 200
BoxLike = Box | Mapping[str, Any]

__all__ = [
    "AsyncResultsPublisher",
    "Box",
    "FrameResult",
    "ResultsPublisher",
    "latest_results",
    "publish_results",
]


def make_result(
    frame: Frame | str,
    seq: int | None = None,
    *,
    boxes: Iterable[BoxLike] = (),
    data: Mapping[str, Any] | None = None,
    source: str = "",
    captured_ns: int | None = None,
    width: int | None = None,
    height: int | None = None,
) -> FrameResult:
    """A validated result for ``frame`` (or for camera ``frame`` + ``seq`` + the frame's
    ``width``/``height``). Raises shared.results.ResultError (a ValueError) on bad input."""
    if isinstance(frame, Frame):
        camera, seq = frame.camera, frame.seq
        captured_ns = frame.captured_ns if captured_ns is None else captured_ns
        width, height = frame.width, frame.height
    else:
        camera = frame
        if seq is None or width is None or height is None:
            raise ResultError("a result by camera name needs seq, width and height (or pass the Frame)")
    return FrameResult(
        camera=camera,
        seq=seq,
        captured_ns=0 if captured_ns is None else captured_ns,
        published_ns=time.time_ns(),
        width=width,
        height=height,
        boxes=make_boxes(boxes),
        data=dict(data or {}),
        source=source,
    )


class AsyncResultsPublisher:
    """Sends results over one connection; ``async with AsyncResultsPublisher(url) as out``."""

    def __init__(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        source: str = "",
        maxlen: int = RESULTS_MAXLEN,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.url = (url or default_url()).rstrip("/")
        self.transport = transport_of(self.url)
        self.source = source
        self.published = 0
        self._maxlen = maxlen
        self._timeout = timeout
        token = token if token is not None else default_token()
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}
        self._redis = connect(self.url, socket_timeout=timeout) if self.transport == "redis" else None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AsyncResultsPublisher:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def publish(
        self,
        frame: Frame | str,
        seq: int | None = None,
        *,
        boxes: Iterable[BoxLike] = (),
        data: Mapping[str, Any] | None = None,
        captured_ns: int | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> FrameResult:
        """Publish the result of ``frame``; raises ResultError (bad input), AuthRefused or
        PublishFailed (not delivered)."""
        result = make_result(
            frame, seq, boxes=boxes, data=data, source=self.source,
            captured_ns=captured_ns, width=width, height=height,
        )  # fmt: skip
        await self.send(result)
        return result

    async def send(self, result: FrameResult) -> None:
        try:
            if self._redis is not None:
                await self._redis.xadd(
                    results_key(result.camera),
                    to_stream_fields(result),  # type: ignore[arg-type]
                    maxlen=self._maxlen,
                    approximate=False,
                )
            else:
                await self._post(result)
        except (TimeoutError, OSError, RedisError, aiohttp.ClientError) as exc:
            if (refusal := auth_refusal(exc)) is not None:
                raise AuthRefused(f"{self.url}: {refusal}") from exc
            raise PublishFailed(f"result of {result.camera} #{result.seq}: {describe_error(exc)}") from exc
        self.published += 1

    async def _post(self, result: FrameResult) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))
        headers = {"Content-Type": "application/json", **self._auth}
        url = f"{self.url}/cameras/{result.camera}/results"
        async with self._session.post(url, data=to_json(result), headers=headers) as response:
            if response.status < 300:
                return
            text = (await response.content.read(MAX_ERROR_BODY)).decode("utf-8", "replace").strip()
            if response.status in (401, 403):
                raise AuthRefused(f"{self.url}: HTTP {response.status} {text}")
            raise PublishFailed(f"result of {result.camera} #{result.seq}: HTTP {response.status} {text}")

    async def latest(self, camera: str) -> FrameResult | None:
        """The newest result published for ``camera``, or None."""
        try:
            if self._redis is not None:
                newest = await newest_result(self._redis, camera)
                return None if newest is None else newest[0]
            if self._session is None:
                self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))
            async with self._session.get(
                f"{self.url}/cameras/{camera}/results", headers=self._auth
            ) as response:
                if response.status == 404:
                    return None
                response.raise_for_status()
                return from_json(await response.read(), camera)
        except (TimeoutError, OSError, RedisError, aiohttp.ClientError) as exc:
            raise PublishFailed(f"results of {camera}: {describe_error(exc)}") from exc

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
        if self._session is not None:
            await self._session.close()
            self._session = None


class ResultsPublisher:
    """:class:`AsyncResultsPublisher` for plain code (its loop runs in a background thread)."""

    def __init__(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        source: str = "",
        maxlen: int = RESULTS_MAXLEN,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self._publisher = AsyncResultsPublisher(
            url, token=token, source=source, maxlen=maxlen, timeout=timeout
        )
        self._timeout = timeout
        self._thread = LoopThread(self, "framebus-results")

    def publish(
        self,
        frame: Frame | str,
        seq: int | None = None,
        *,
        boxes: Iterable[BoxLike] = (),
        data: Mapping[str, Any] | None = None,
        captured_ns: int | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> FrameResult:
        result = make_result(
            frame, seq, boxes=boxes, data=data, source=self._publisher.source,
            captured_ns=captured_ns, width=width, height=height,
        )  # fmt: skip
        self._thread.call(self._publisher.send(result), self._timeout * 2)
        return result

    def latest(self, camera: str) -> FrameResult | None:
        return self._thread.call(self._publisher.latest(camera), self._timeout * 2)

    def close(self) -> None:
        if self._thread.running:
            try:
                self._thread.call(self._publisher.aclose(), self._timeout)
            finally:
                self._thread.stop()

    def __enter__(self) -> ResultsPublisher:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# publish_results() keeps one connection per (url, token) for the life of the process.
_shared: dict[tuple[str, str | None], ResultsPublisher] = {}


def _close_shared() -> None:
    for publisher in _shared.values():
        publisher.close()
    _shared.clear()


atexit.register(_close_shared)


def _shared_publisher(url: str | None, token: str | None) -> ResultsPublisher:
    key = (url or default_url(), token if token is not None else default_token())
    if key not in _shared:
        _shared[key] = ResultsPublisher(key[0], token=key[1])
    return _shared[key]


def publish_results(
    frame: Frame | str,
    seq: int | None = None,
    *,
    boxes: Iterable[BoxLike] = (),
    data: Mapping[str, Any] | None = None,
    url: str | None = None,
    token: str | None = None,
    captured_ns: int | None = None,
    width: int | None = None,
    height: int | None = None,
) -> FrameResult:
    """Publish what was found in ``frame``: ``boxes`` (dicts with x, y, w, h in the frame's
    pixels, optional label and score 0..1) and free JSON ``data``. Pass the Frame itself, or
    the camera name with seq, width and height. Raises ResultError for bad input, AuthRefused
    or PublishFailed when not delivered."""
    return _shared_publisher(url, token).publish(
        frame, seq, boxes=boxes, data=data, captured_ns=captured_ns, width=width, height=height
    )


def latest_results(camera: str, url: str | None = None, *, token: str | None = None) -> FrameResult | None:
    """The newest result published for ``camera`` (None when there is none)."""
    return _shared_publisher(url, token).latest(camera)
