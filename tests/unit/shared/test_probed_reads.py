"""Probed blocking reads against a real redis-server: a blocked read is followed by PINGs,
their PONGs never pass for a reply, a read answered at once sends none, and a long wait
sends no more than MAX_PROBES."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from shared.probed_reads import MAX_PROBES, PROBE_EVERY_SECONDS, PROBE_FIRST_SECONDS, ProbedConnection
from shared.redisconn import connect
from tests.fixtures.servers import RedisServer

KEY = "framebus:frames:cam0"


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    redis = connect(redis_server.url, socket_timeout=3.0)
    assert isinstance(redis, aioredis.Redis)
    yield redis
    await redis.aclose()


@pytest.fixture
async def probed(client: aioredis.Redis) -> AsyncIterator[ProbedConnection]:
    connection = ProbedConnection(client)
    yield connection
    await connection.close()


async def pings_served(client: aioredis.Redis) -> int:
    stats: dict[str, Any] = await client.info("commandstats")
    return int(stats.get("cmdstat_ping", {}).get("calls", 0))


def xread_after(last_id: bytes | str, block_ms: int = 2000) -> tuple[str | bytes | int, ...]:
    return ("XREAD", "COUNT", 16, "BLOCK", block_ms, "STREAMS", KEY, last_id)


async def test_a_blocked_read_is_probed_and_each_reply_is_the_read_not_a_pong(
    client: aioredis.Redis, probed: ProbedConnection
) -> None:
    last_id: bytes | str = "0-0"
    pings_before = await pings_served(client)
    for frame in range(5):
        read = asyncio.create_task(probed.call(*xread_after(last_id)))
        await asyncio.sleep(PROBE_FIRST_SECONDS * 10)  # blocked for longer than the probe delay
        added = await client.xadd(KEY, {"frame": str(frame)})
        reply = await read
        [(key, [(entry_id, fields)])] = reply
        assert (key, entry_id, fields) == (KEY.encode(), added, {b"frame": str(frame).encode()})
        last_id = entry_id
    assert probed.probes_sent == 5
    assert await pings_served(client) - pings_before == 5, "a probe was not sent as its own PING"


async def test_a_read_answered_at_once_sends_no_probe(
    client: aioredis.Redis, probed: ProbedConnection
) -> None:
    added = [await client.xadd(KEY, {"frame": str(n)}) for n in range(3)]
    for last_id, expected in zip(["0-0", *added], added, strict=False):
        [(_, entries)] = await probed.call(*xread_after(last_id))
        assert entries[0][0] == expected
    await asyncio.sleep(PROBE_FIRST_SECONDS * 5)
    assert probed.probes_sent == 0


async def test_a_read_that_times_out_empty_is_followed_by_a_correct_one(
    client: aioredis.Redis, probed: ProbedConnection
) -> None:
    assert not await probed.call(*xread_after("0-0", block_ms=50))
    assert 2 <= probed.probes_sent <= 3  # at 2 ms, 27 ms and perhaps 52 ms
    added = await client.xadd(KEY, {"frame": "1"})
    [(_, [(entry_id, _fields)])] = await probed.call(*xread_after("0-0"))
    assert entry_id == added


async def test_a_cancelled_read_leaves_a_connection_that_reads_correctly_again(
    client: aioredis.Redis, probed: ProbedConnection
) -> None:
    read = asyncio.create_task(probed.call(*xread_after("0-0")))
    await asyncio.sleep(PROBE_FIRST_SECONDS * 10)
    read.cancel()
    with pytest.raises(asyncio.CancelledError):
        await read
    added = await client.xadd(KEY, {"frame": "1"})
    [(_, [(entry_id, _fields)])] = await probed.call(*xread_after("0-0"))
    assert entry_id == added


async def test_a_long_wait_is_probed_every_interval_up_to_the_limit_and_stays_in_step(
    client: aioredis.Redis, probed: ProbedConnection
) -> None:
    pings_before = await pings_served(client)
    blocked_ms = int((PROBE_FIRST_SECONDS + PROBE_EVERY_SECONDS * (MAX_PROBES + 4)) * 1000)
    assert not await probed.call(*xread_after("0-0", block_ms=blocked_ms))
    assert probed.probes_sent == MAX_PROBES
    # The PONGs owed are read before the next reply, which is the read's own.
    added = await client.xadd(KEY, {"frame": "1"})
    [(_, [(entry_id, _fields)])] = await probed.call(*xread_after("0-0"))
    assert entry_id == added
    assert await pings_served(client) - pings_before == MAX_PROBES


async def test_a_user_who_may_not_ping_reads_on_without_probes(
    client: aioredis.Redis, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    await client.execute_command("ACL", "SETUSER", "reader", "on", ">reader-pw", "~*", "+xread", "+hello")
    reader = connect(redis_server.url.replace("redis://", "redis://reader:reader-pw@"), socket_timeout=3.0)
    assert isinstance(reader, aioredis.Redis)
    probed = ProbedConnection(reader)
    try:
        last_id: bytes | str = "0-0"
        for frame in range(3):
            read = asyncio.create_task(probed.call(*xread_after(last_id)))
            await asyncio.sleep(PROBE_FIRST_SECONDS * 10)
            added = await client.xadd(KEY, {"frame": str(frame)})
            [(_, [(entry_id, _fields)])] = await read
            assert entry_id == added
            last_id = entry_id
    finally:
        await probed.close()
        await reader.aclose()
    assert not probed.probing and probed.probes_sent == 1
    assert "refused a PING probe" in caplog.text
