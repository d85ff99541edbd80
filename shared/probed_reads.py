"""Blocking reads on a connection of their own, probed with PINGs while they wait.

A blocked ``XREAD`` is a request of one small packet with nothing behind it, and its reply's
last packet usually has nothing behind it either. When such a lone packet is lost, nothing
reveals the loss to TCP but a timer: on Linux a lone segment waits at least 200 ms (the loss
probe of a single packet in flight waits as long as the minimum retransmission timeout). At
15 fps three frames are captured meanwhile; the reader gets them in one reply and shows only
the newest. A segment sent behind the lost one fixes that: the receiver's TCP acknowledges
it selectively, and the sender's TCP resends the lost packet within a round trip.

So while a request waits for its reply, the reader sends a ``PING`` ``PROBE_FIRST_SECONDS``
after it (behind the request: a lost request is resent at once) and then every
``PROBE_EVERY_SECONDS`` (a PING that reaches Redis after the reply was written is answered
in a segment of its own, behind the reply's last packet: a lost reply tail is resent at
once). The delays keep each PING a segment of its own; TCP would otherwise coalesce them.
Redis answers a PING in order, after the reply before it; the reader reads those ``PONG``s
before the next reply. A read answered at once sends none; one that waits a frame interval
(66 ms at 15 fps) sends three, 14 bytes each, at most ``MAX_PROBES`` per request.

Own connection, not the pool's: the PONGs owed belong to this connection's reply stream.
A Redis user who may not ``PING`` (an ACL without ``+ping``) answers a probe with an error:
the reader then stops probing, says so once, and reads on unprobed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection, Connection
from redis.exceptions import RedisError, ResponseError

# Long enough for a probe to leave as a segment of its own, short against a frame interval.
PROBE_FIRST_SECONDS = 0.002
# A lost reply tail costs up to this much instead of 200 ms.
PROBE_EVERY_SECONDS = 0.025
# Past TCP's own minimum retransmission timeout (~0.3 s of probes) more probes add nothing.
MAX_PROBES = 12
PING = b"*1\r\n$4\r\nPING\r\n"

log = logging.getLogger("framebus.redis.probes")


class ProbedConnection:
    """One request at a time; ``close`` (or any error) drops the connection, the next call reconnects."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._connection: AbstractConnection | None = None
        self._pongs_owed = 0  # probes sent whose PONG has not been read yet
        self._probe: asyncio.Task[None] | None = None
        self._probe_writing = False  # a probe task mid-write must not be cancelled
        self.probing = True  # False once Redis refused a PING
        self.probes_sent = 0

    async def call(self, *args: str | bytes | int) -> Any:
        """Sends one command and returns its reply, parsed as the client's own method would."""
        connection = await self._connected()
        try:
            return await self._call(connection, args)
        except BaseException:
            # Cancelled or failed mid-request: the reply stream is out of step; start afresh.
            await self.close()
            raise

    async def close(self) -> None:
        self._stop_probing()
        connection, self._connection = self._connection, None
        self._pongs_owed = 0
        if connection is not None:
            with contextlib.suppress(OSError, RedisError):
                await connection.disconnect(nowait=True)

    async def _call(self, connection: AbstractConnection, args: tuple[str | bytes | int, ...]) -> Any:
        owed_before = self._pongs_owed  # PONGs of earlier requests, ahead of this reply
        answered = asyncio.Event()
        await connection.send_packed_command(connection.pack_command(*args), check_health=False)
        if self.probing:
            self._probe = asyncio.create_task(self._probe_until_answered(connection, answered))
        try:
            for _ in range(owed_before):
                await self._read_pong(connection)
            self._pongs_owed -= owed_before
            command = str(args[0]).upper()
            return await self._client.parse_response(cast(Connection, connection), command)
        finally:
            answered.set()
            self._stop_probing()

    async def _read_pong(self, connection: AbstractConnection) -> None:
        try:
            await connection.read_response()
        except ResponseError as exc:  # the reply to the probe itself: the read goes on
            if self.probing:
                log.warning("Redis refused a PING probe (%s): reading on without probes", exc)
            self.probing = False

    def _stop_probing(self) -> None:
        if self._probe is not None and not self._probe_writing:
            self._probe.cancel()  # asleep; one mid-write sees ``answered`` when it wakes
        self._probe = None

    async def _probe_until_answered(self, connection: AbstractConnection, answered: asyncio.Event) -> None:
        delay = PROBE_FIRST_SECONDS
        for _ in range(MAX_PROBES):
            await asyncio.sleep(delay)
            if answered.is_set() or connection is not self._connection or not self.probing:
                return
            self._pongs_owed += 1
            self.probes_sent += 1
            self._probe_writing = True
            try:
                # A failed write shows up as the reply's read error; nothing to do here.
                with contextlib.suppress(OSError, RedisError):
                    await connection.send_packed_command(PING, check_health=False)
            finally:
                self._probe_writing = False
            delay = PROBE_EVERY_SECONDS

    async def _connected(self) -> AbstractConnection:
        if self._connection is None:
            # The pool's settings (address, TLS, credentials, timeouts); our own connection.
            connection = self._client.connection_pool.make_connection()
            await connection.connect()
            self._connection = connection
        return self._connection
