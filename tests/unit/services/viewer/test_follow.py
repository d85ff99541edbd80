"""The follow/pipeline layer in-process: the real adapters against a real redis-server and the
real gateway app; the skip-to-newest and gap logic without subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from functools import partial

import cv2
import numpy as np
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer

from services.gateway.app import create_app as create_gateway
from services.gateway.settings import GatewaySettings
from services.viewer.pipeline import CameraPipeline
from services.viewer.service import ViewerService
from services.viewer.settings import ViewerSettings
from shared.demand import demand_key, parse_pace
from shared.registry import REGISTRY_KEY
from shared.upstream import UpstreamError
from shared.upstream_gateway import GatewayUpstream
from shared.upstream_redis import XREAD_BATCH, RedisUpstream
from shared.wire import FrameMeta, stream_key, to_headers, to_stream_fields
from tests.fixtures.servers import RedisServer
from tests.support.waiting import eventually

JPEG = cv2.imencode(".jpg", np.full((48, 64, 3), 90, np.uint8))[1].tobytes()
IDLE = 300.0


def meta(camera: str, seq: int) -> FrameMeta:
    now = time.time_ns()
    return FrameMeta(camera, seq, now, now, 64, 48)


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


async def publish(client: aioredis.Redis, camera: str, seqs: range) -> None:
    for seq in seqs:
        await client.xadd(stream_key(camera), to_stream_fields(meta(camera, seq), JPEG))  # type: ignore[arg-type]
    await client.zadd(REGISTRY_KEY, {camera: time.time()})


async def test_redis_reader_hands_the_newest_entry_and_counts_what_it_passed_over(
    redis_server: RedisServer, redis_client: aioredis.Redis
) -> None:
    malformed: list[str] = []
    upstream = RedisUpstream(redis_server.url, lambda reason, _: malformed.append(reason), IDLE)
    await publish(redis_client, "cam0", range(1, 4))
    async with upstream.reader("cam0") as reader:
        first = await reader.pull()  # what the stream holds now: its newest entry
        assert first.meta.seq == 3
        await publish(redis_client, "cam0", range(4, 8))
        second = await reader.pull()  # a short reply: the newest, the older ones counted
        assert (second.meta.seq, second.skipped) == (7, 3)
        await publish(redis_client, "cam0", range(8, 8 + 2 * XREAD_BATCH))
        third = await reader.pull()  # a full reply may hide more: straight to the newest
        assert third.meta.seq == 7 + 2 * XREAD_BATCH and third.skipped >= XREAD_BATCH
        assert reader.connected
    assert await upstream.discover() == {"cam0": pytest.approx(0, abs=2)}
    assert malformed == []
    await upstream.close()


async def test_redis_reader_skips_a_malformed_newest_entry_for_the_valid_one_before_it(
    redis_server: RedisServer, redis_client: aioredis.Redis
) -> None:
    malformed: list[str] = []
    upstream = RedisUpstream(redis_server.url, lambda reason, _: malformed.append(reason), IDLE)
    async with upstream.reader("cam0") as reader:
        await publish(redis_client, "cam0", range(1, 2))
        assert (await reader.pull()).meta.seq == 1
        await publish(redis_client, "cam0", range(2, 4))
        await redis_client.xadd(stream_key("cam0"), {"camera": "cam0", "jpeg": b"not a frame"})
        delivery = await reader.pull()
        assert (delivery.meta.seq, delivery.skipped) == (3, 1)
    assert malformed == ["bad_entry"]
    await upstream.close()


async def test_redis_reader_reports_a_dead_redis_and_goes_on_where_it_was(redis_server: RedisServer) -> None:
    upstream = RedisUpstream(redis_server.url, lambda *_: None, IDLE)
    client = aioredis.Redis.from_url(redis_server.url)
    await publish(client, "cam0", range(1, 3))
    async with upstream.reader("cam0") as reader:
        assert (await reader.pull()).meta.seq == 2
        redis_server.kill()
        with pytest.raises(UpstreamError):
            await reader.pull()
        assert not reader.connected
    await client.aclose()
    await upstream.close()


@pytest.fixture
async def gateway(aiohttp_server: AiohttpServer) -> TestServer:
    app: web.Application = create_gateway(GatewaySettings())
    return await aiohttp_server(app)


async def test_gateway_reader_pulls_the_newest_frame_and_discovery_lists_the_camera(
    gateway: TestServer,
) -> None:
    url = str(gateway.make_url("")).rstrip("/")
    upstream = GatewayUpstream(url, lambda *_: None)
    async with upstream.session.post(
        f"{url}/cameras/cam0/frames",
        data=JPEG,
        headers={"Content-Type": "image/jpeg", **to_headers(meta("cam0", 1))},
    ) as response:
        assert response.status == 204
    assert list(await upstream.discover()) == ["cam0"]
    async with upstream.reader("cam0") as reader:
        assert (await reader.pull()).meta.seq == 1
        for seq in (2, 3, 4):
            async with upstream.session.post(
                f"{url}/cameras/cam0/frames",
                data=JPEG,
                headers={"Content-Type": "image/jpeg", **to_headers(meta("cam0", seq))},
            ):
                pass
        assert (await reader.pull()).meta.seq == 4  # pull mode: the newest, never a backlog
    await upstream.close()


@contextlib.asynccontextmanager
async def following_cam7(
    settings: ViewerSettings, redis_client: aioredis.Redis
) -> AsyncIterator[tuple[ViewerService, CameraPipeline]]:
    """A running viewer service that has discovered cam7 (one frame published); stopped after."""
    service = ViewerService(settings)
    service.start()
    try:
        await publish(redis_client, "cam7", range(1, 2))
        pipeline = await eventually(lambda: service.cameras.get("cam7"))
        assert pipeline is not None
        yield service, pipeline
    finally:
        service.end_streams()
        await service.stop()


async def test_viewer_service_discovers_a_camera_and_renders_it_only_while_watched(
    redis_server: RedisServer, redis_client: aioredis.Redis
) -> None:
    settings = ViewerSettings(
        redis_url=redis_server.url,
        camera_id="cam0",
        viewer_discovery_seconds=0.1,
        viewer_watch_linger_seconds=0.5,
    )
    async with following_cam7(settings, redis_client) as (_, pipeline):
        assert pipeline.summary().seq is None  # discovered, not watched: nothing fetched
        pipeline.demand.ask()
        await publish(redis_client, "cam7", range(2, 4))
        await eventually(lambda: pipeline.summary().seq == 3 and pipeline.live)
        # A real gap while the camera is watched is counted.
        await publish(redis_client, "cam7", range(10, 11))
        pipeline.demand.ask()
        await eventually(lambda: pipeline.summary().seq == 10)
        assert pipeline.summary().dropped.get("upstream_gap") == 6


async def test_a_viewer_that_passes_frames_over_tells_capture_how_fast_it_takes_them(
    redis_server: RedisServer, redis_client: aioredis.Redis
) -> None:
    settings = ViewerSettings(redis_url=redis_server.url, camera_id="cam7", viewer_discovery_seconds=0.1)
    async with following_cam7(settings, redis_client) as (service, pipeline):
        pipeline.demand.ask()
        for seq in range(2, 5):  # kept up with: no pace
            await publish(redis_client, "cam7", range(seq, seq + 1))
            await eventually(partial(lambda seq: pipeline.summary().seq == seq, seq))
        assert service.cameras.paces() == {}
        await publish(redis_client, "cam7", range(5, 10))  # a burst: four passed over
        await eventually(lambda: pipeline.summary().seq == 9)
        assert service.cameras.paces()["cam7"] > 0
        async with asyncio.timeout(5):  # the marker is refreshed once a second
            while not parse_pace(await redis_client.get(demand_key("cam7"))):  # noqa: ASYNC110 - polls Redis
                await asyncio.sleep(0.05)
