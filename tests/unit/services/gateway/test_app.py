"""The gateway app in-process (aiohttp test client around the real factory)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import cv2
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from shared.wire import FrameMeta, to_headers
from shared.wire_ws import from_ws_message

GatewayClient = TestClient[web.Request, web.Application]
StartGateway = Callable[..., Awaitable[GatewayClient]]
JPEG = cv2.imencode(".jpg", np.zeros((48, 64, 3), np.uint8))[1].tobytes()


def headers(camera: str, seq: int) -> dict[str, str]:
    return {
        "Content-Type": "image/jpeg",
        **to_headers(FrameMeta(camera, seq, time.time_ns(), time.time_ns(), 64, 48)),
    }


@pytest.fixture
def start_gateway(aiohttp_client: AiohttpClient) -> StartGateway:
    """The real app factory with these settings, behind aiohttp's in-process test client."""

    async def start(**settings: Any) -> GatewayClient:
        return await aiohttp_client(create_app(GatewaySettings(**settings)))

    return start


async def post(client: GatewayClient, camera: str, seq: int) -> int:
    response = await client.post(f"/cameras/{camera}/frames", data=JPEG, headers=headers(camera, seq))
    return response.status


async def test_gateway_keeps_the_newest_frame_per_camera(start_gateway: StartGateway) -> None:
    client = await start_gateway()
    for seq in (1, 2, 3):
        assert await post(client, "cam0", seq) == 204
    assert await post(client, "cam1", 9) == 204
    latest = await client.get("/cameras/cam0/latest.jpg")
    assert latest.status == 200
    assert latest.headers["X-Frame-Seq"] == "3"
    assert float(latest.headers["X-Frame-Age-Seconds"]) >= 0
    assert await latest.read() == JPEG
    listing = await (await client.get("/cameras")).json()
    assert [entry["camera"] for entry in listing["cameras"]] == ["cam0", "cam1"]
    assert (await client.get("/cameras/cam2/latest.jpg")).status == 404


async def test_slow_subscriber_skips_to_the_newest_frame_and_the_skips_are_counted(
    start_gateway: StartGateway,
) -> None:
    client = await start_gateway()
    noise = np.random.default_rng(3).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    # ~0.9 MB: large enough to fill socket buffers, under aiohttp's 1 MiB raw-body warning.
    big = cv2.imencode(".jpg", noise, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()

    def meta(seq: int) -> dict[str, str]:
        return {
            "Content-Type": "image/jpeg",
            **to_headers(FrameMeta("cam0", seq, time.time_ns(), time.time_ns(), 1280, 720)),
        }

    await client.post("/cameras/cam0/frames", data=big, headers=meta(1))
    async with client.ws_connect("/cameras/cam0/ws", max_msg_size=0) as ws:
        assert from_ws_message(await ws.receive_bytes(timeout=5))[0].seq == 1
        # The subscriber reads nothing while 30 large frames arrive: socket buffers fill up.
        for seq in range(2, 32):
            assert (await client.post("/cameras/cam0/frames", data=big, headers=meta(seq))).status == 204
        received: list[int] = []
        while not received or received[-1] != 31:
            received.append(from_ws_message(await ws.receive_bytes(timeout=5))[0].seq)
    assert received == sorted(received)
    assert len(received) < 30, "the subscriber was sent a backlog instead of the newest frame"
    metrics = await (await client.get("/metrics")).text()
    assert (
        'framebus_frames_dropped_total{camera="cam0",reason="slow_subscriber",stage="subscriber"}' in metrics
    )


async def test_gateway_refuses_more_cameras_than_its_bound(start_gateway: StartGateway) -> None:
    client = await start_gateway(gateway_max_cameras=2)
    assert await post(client, "a", 1) == 204
    assert await post(client, "b", 1) == 204
    response = await client.post("/cameras/c/frames", data=JPEG, headers=headers("c", 1))
    assert response.status == 429
    assert "GATEWAY_MAX_CAMERAS" in await response.text()


async def test_gateway_readiness_does_not_wait_for_cameras(start_gateway: StartGateway) -> None:
    client = await start_gateway()
    response = await client.get("/readyz")
    assert response.status == 200
    assert (await response.json())["checks"]["ingest"]["ok"] is True
    assert (await client.get("/livez")).status == 200
    assert "framebus_frames_received_total" in await (await client.get("/metrics")).text()


async def test_pull_subscriber_gets_a_frame_only_when_it_asks_and_then_the_newest(
    start_gateway: StartGateway,
) -> None:
    client = await start_gateway()
    await post(client, "cam0", 1)
    async with client.ws_connect("/cameras/cam0/ws?pull=1") as ws:
        with pytest.raises(asyncio.TimeoutError):
            await ws.receive_bytes(timeout=0.2)  # nothing until asked
        await ws.send_str("next")
        assert from_ws_message(await ws.receive_bytes(timeout=2))[0].seq == 1
        for seq in range(2, 6):
            await post(client, "cam0", seq)
        await ws.send_str("next")
        await ws.send_str("next")  # asking twice still means one frame
        assert from_ws_message(await ws.receive_bytes(timeout=2))[0].seq == 5
        with pytest.raises(asyncio.TimeoutError):
            await ws.receive_bytes(timeout=0.2)


async def test_subscriber_to_a_camera_without_frames_waits_and_takes_no_camera_slot(
    start_gateway: StartGateway,
) -> None:
    client = await start_gateway(gateway_max_cameras=1)
    async with client.ws_connect("/cameras/ghost/ws") as ghost:
        assert (await (await client.get("/cameras")).json())["cameras"] == []
        assert await post(client, "cam0", 1) == 204  # the reader did not use up the one slot
        with pytest.raises(asyncio.TimeoutError):
            await ghost.receive_bytes(timeout=0.2)
