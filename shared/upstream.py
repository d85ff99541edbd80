"""Where a consumer's frames come from: the Redis bus or a gateway, behind one small interface.

An :class:`Upstream` discovers cameras and opens one :class:`CameraReader` per camera. A
reader *pulls*: ``pull()`` waits for a frame newer than the last one it returned and hands
over the newest available, with the number of older frames it passed over. A consumer asks
only when it is ready for a frame, so frames it would supersede are neither sent nor parsed.

The viewer's follower, the gateway's Redis backplane and the client library all read
through these adapters; the wire details stay in :mod:`shared.wire`.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar

from shared.backoff import Backoff
from shared.transport import TransportLink
from shared.wire import FrameMeta

T = TypeVar("T")

# Called with (reason, detail) for every entry or message that is not a valid frame.
MalformedHandler = Callable[[str, str], None]


@dataclass(frozen=True, slots=True)
class Delivery:
    """A frame pulled from upstream; ``skipped`` older frames were passed over for it."""

    meta: FrameMeta
    jpeg: bytes
    skipped: int = 0


class UpstreamError(Exception):
    """The transport failed (connection lost, timeout): back off and open a new reader."""


class CameraReader(ABC):
    """One camera's frames, newest first; an async context manager that closes it.

    A reader outlives an :class:`UpstreamError`: the next ``pull`` reconnects, and remembers
    where it was, so a reconnect neither repeats nor loses its place.
    """

    def __init__(self, camera: str, on_malformed: MalformedHandler) -> None:
        self.camera = camera
        self.connected = False  # the last request upstream succeeded
        self._on_malformed = on_malformed

    @abstractmethod
    async def pull(self) -> Delivery:
        """The newest frame after the last one pulled; waits for it. Raises UpstreamError."""

    async def close(self) -> None:  # noqa: B027 - readers without resources need nothing
        pass

    async def __aenter__(self) -> CameraReader:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _accept(self, meta: FrameMeta, where: str) -> bool:
        if meta.camera == self.camera:
            return True
        self._on_malformed("camera_mismatch", f"frame of {meta.camera} in {where} of {self.camera}")
        return False


class Upstream(ABC):
    """A source of cameras: ``discover`` lists them, ``reader`` opens one."""

    transport: str

    def __init__(self, on_malformed: MalformedHandler) -> None:
        self.on_malformed = on_malformed

    @abstractmethod
    async def discover(self) -> dict[str, float | None]:
        """Valid camera ids known upstream, each with the age in seconds of its newest frame
        (None: unknown). Raises UpstreamError when upstream cannot answer."""

    @abstractmethod
    def reader(self, camera: str) -> CameraReader: ...

    async def close(self) -> None:  # noqa: B027 - upstreams without resources need nothing
        pass


async def until_it_answers(call: Callable[[], Awaitable[T]], link: TransportLink, backoff: Backoff) -> T:
    """``call`` again and again until upstream answers: each failure marks ``link`` down and
    waits the next step of ``backoff``; an answer marks it up and resets the ladder."""
    while True:
        try:
            result = await call()
        except UpstreamError as exc:
            link.down(str(exc), retry_in=(delay := backoff.next_delay()))
            await asyncio.sleep(delay)
            continue
        finally:
            stop_if_cancelled()
        link.up()
        backoff.reset()
        return result


def stop_if_cancelled() -> None:
    """Raises CancelledError if this task was asked to stop. On Python 3.11 redis-py's read
    (asyncio.wait_for inside) can swallow a cancellation that lands as a reply arrives; the
    reader loop would then go on for ever, and a camera's reader outlive its last subscriber."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
