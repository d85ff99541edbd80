"""Demand markers against a real redis-server: the fastest consumer's pace holds, a consumer
that keeps up beats any pace, and a departed fast consumer's pace lapses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from shared import demand
from shared.demand import DemandSignal, demand_key, parse_pace
from tests.fixtures.servers import RedisServer


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    redis = aioredis.Redis.from_url(redis_server.url)
    yield redis
    await redis.aclose()


async def pace_of(client: aioredis.Redis) -> float | None:
    return parse_pace(await client.get(demand_key("cam0")))


async def test_the_fastest_consumers_pace_holds_over_a_slower_ones(client: aioredis.Redis) -> None:
    await DemandSignal(client).refresh(["cam0"], {"cam0": 90.0})
    await DemandSignal(client).refresh(["cam0"], {"cam0": 40.0})
    assert await pace_of(client) == 90.0
    assert 0 < await client.pttl(demand_key("cam0")) <= demand.DEMAND_TTL_MS


async def test_a_consumer_that_keeps_up_lifts_any_pace(client: aioredis.Redis) -> None:
    await DemandSignal(client).refresh(["cam0"], {"cam0": 40.0})
    await DemandSignal(client).refresh(["cam0"])  # keeps up: no pace
    await DemandSignal(client).refresh(["cam0"], {"cam0": 90.0})
    assert await pace_of(client) == 0.0


async def test_a_departed_fast_consumers_pace_lapses_after_its_ttl(
    client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demand, "DEMAND_TTL_MS", 300)
    await DemandSignal(client).refresh(["cam0"], {"cam0": 90.0})
    slow = DemandSignal(client)
    await slow.refresh(["cam0"], {"cam0": 40.0})
    assert await pace_of(client) == 90.0
    await asyncio.sleep(0.35)  # the fast one is gone; the slow one's refresh kept the key alive
    monkeypatch.setattr(demand, "REFRESH_SECONDS", 0.0)
    await slow.refresh(["cam0"], {"cam0": 40.0})
    assert await pace_of(client) == 40.0


@pytest.mark.parametrize(
    ("marker", "pace"),
    [(None, None), (b"1", 0.0), (b"0 123", 0.0), (b"37.5 123", 37.5), (b"junk", 0.0), (b"inf 1", 0.0)],
)
def test_a_marker_reads_as_a_pace(marker: bytes | None, pace: float | None) -> None:
    assert parse_pace(marker) == pace


async def test_a_consumer_that_falls_behind_replaces_its_own_pace_at_once(client: aioredis.Redis) -> None:
    consumer = DemandSignal(client)
    await consumer.refresh(["cam0"])  # keeping up
    await consumer.refresh(["cam0"], {"cam0": 40.0})  # behind now: written at once, not in a second
    assert await pace_of(client) == 40.0
