"""Frames appended back to back on one Redis connection: a frame does not wait for the last reply.

Waiting for each reply makes the sink stop-and-wait. On a lossy link a lost reply is a lone
packet with nothing behind it to reveal the loss, so the next frame waits for TCP's 200 ms
minimum retransmission timeout while the newest-frame slot supersedes the frames captured
meanwhile. With frames in flight, the next frame's packets keep the connection busy, and
TCP repairs a loss within a round trip.

One connection, not a pool: Redis applies the commands of one connection in the order they
were sent, so entries keep the capture order (over two connections a late frame could land
behind a newer one). At most ``IN_FLIGHT_FRAMES`` frames are unanswered, which bounds memory.
One task does all the I/O (the sink's): replies that have arrived are read before each write,
and all of them when the sink is idle; a reply overdue by the socket timeout fails every
unanswered frame and drops the connection, and the next frame connects again.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisError, ResponseError

from shared.stream_writer import StreamWriter
from shared.wire import FrameMeta

# Frames written but not yet answered. Four cover a 200 ms retransmission at 15 fps; more
# would only hold older frames in the socket while the camera moves on.
IN_FLIGHT_FRAMES = 4

TRANSPORT_ERRORS = (OSError, RedisError, TimeoutError)

Token = TypeVar("Token")
# Called once per frame written: with None when Redis took it, else with the error.
OnAnswer = Callable[[Token, BaseException | None], None]


class PipelinedAppender(Generic[Token]):
    def __init__(self, client: aioredis.Redis, writer: StreamWriter, on_answer: OnAnswer[Token]) -> None:
        self._pool = client.connection_pool
        self._writer = writer
        self._on_answer = on_answer
        self._connection: AbstractConnection | None = None
        # (replies expected, the caller's token) per frame written, oldest first.
        self._unanswered: deque[tuple[int, Token]] = deque()

    @property
    def in_flight(self) -> int:
        return len(self._unanswered)

    async def write(self, meta: FrameMeta, jpeg: bytes, token: Token, *, register: bool = False) -> None:
        """Sends one frame once fewer than IN_FLIGHT_FRAMES are unanswered; its outcome, and
        that of earlier frames, reaches ``on_answer`` as replies are read."""
        queued = False
        try:
            await self._read_arrived_replies()
            while len(self._unanswered) >= IN_FLIGHT_FRAMES:
                await self._read_oldest()
            connection = await self._connected()
            commands = self._writer.commands(meta, jpeg, register=register)
            self._unanswered.append((len(commands), token))
            queued = True
            await connection.send_packed_command(connection.pack_commands(commands), check_health=False)
        except TRANSPORT_ERRORS as exc:
            await self._fail_all(exc)  # answers this frame too once it was queued
            if not queued:
                self._on_answer(token, exc)
            return
        await self._read_arrived_replies()

    async def settle(self) -> None:
        """Reads every outstanding reply (the sink is idle: nothing else to do meanwhile)."""
        try:
            while self._unanswered:
                await self._read_oldest()
        except TRANSPORT_ERRORS as exc:
            await self._fail_all(exc)

    async def close(self) -> None:
        await self._fail_all(ConnectionError("capture is stopping"))

    async def _connected(self) -> AbstractConnection:
        if self._connection is None:
            # The pool's settings (address, TLS, credentials, timeouts); our own connection.
            connection = self._pool.make_connection()
            await connection.connect()
            self._connection = connection
        return self._connection

    async def _read_arrived_replies(self) -> None:
        try:
            while self._unanswered and self._connection is not None and await self._connection.can_read():
                await self._read_oldest()
        except TRANSPORT_ERRORS as exc:
            await self._fail_all(exc)

    async def _read_oldest(self) -> None:
        """The oldest frame's replies; bounded by the socket timeout (CAPTURE_PUBLISH_TIMEOUT_SECONDS)."""
        assert self._connection is not None
        expected, token = self._unanswered[0]
        error: ResponseError | None = None
        for _ in range(expected):
            try:
                await self._connection.read_response()
            except ResponseError as exc:  # an error reply; the frame's other replies still follow
                error = error or exc
        self._unanswered.popleft()
        self._on_answer(token, error)

    async def _fail_all(self, exc: BaseException) -> None:
        """The connection is unusable: drop it and fail every unanswered frame with ``exc``."""
        unanswered, self._unanswered = self._unanswered, deque()
        connection, self._connection = self._connection, None
        for _, token in unanswered:
            self._on_answer(token, exc)
        if connection is not None:
            with contextlib.suppress(*TRANSPORT_ERRORS):
                await connection.disconnect(nowait=True)
