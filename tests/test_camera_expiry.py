"""Camera ids that stop publishing are forgotten after CAMERA_IDLE_SECONDS, everywhere."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp
import redis

from tests.fixtures import wait_until
from tests.fixtures.frames import post_frame
from tests.fixtures.processes import ServiceProcess
from tests.fixtures.servers import RedisServer

Start = Callable[..., ServiceProcess]


def test_gateway_frees_the_slots_of_invented_camera_ids_after_the_idle_time(start_service: Start) -> None:
    gateway = start_service("gateway", {"GATEWAY_MAX_CAMERAS": "4", "CAMERA_IDLE_SECONDS": "2"})
    for camera in ("junk1", "junk2", "junk3", "junk4"):
        assert post_frame(gateway, camera, 1) == 204
    assert post_frame(gateway, "realcam", 1) == 429
    _, ready = gateway.get_json("/readyz")
    assert "camera slots full" in ready["checks"]["ingest"]["detail"]
    time.sleep(2.5)
    assert post_frame(gateway, "realcam", 1) == 204
    _, listing = gateway.get_json("/cameras")
    assert [entry["camera"] for entry in listing["cameras"]] == ["realcam"]


def test_viewer_forgets_a_camera_that_stopped_publishing(
    redis_server: RedisServer, start_service: Start
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.zadd("framebus:registry", {"ghost": time.time()})
    viewer = start_service(
        "viewer",
        {"REDIS_URL": redis_server.url, "CAMERA_IDLE_SECONDS": "3", "VIEWER_DISCOVERY_SECONDS": "0.5"},
    )

    def listed() -> list[str]:
        return [entry["camera"] for entry in viewer.get_json("/api/cameras")[1]["cameras"]]

    wait_until(lambda: "ghost" in listed(), timeout=5)
    wait_until(lambda: "ghost" not in listed(), timeout=10, message="the idle camera was never forgotten")
    assert "cam0" in listed()  # CAMERA_ID is pinned: it stays
    client.close()


def test_a_registry_entry_forged_far_into_the_future_is_no_permanent_tile(
    redis_server: RedisServer, start_service: Start
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.zadd("framebus:registry", {"forever": time.time() + 10 * 365 * 86400})
    start_service("capture", {"REDIS_URL": redis_server.url})  # a writer prunes the registry
    viewer = start_service("viewer", {"REDIS_URL": redis_server.url, "VIEWER_DISCOVERY_SECONDS": "0.5"})
    viewer.wait_ready()
    time.sleep(1.5)  # several discovery rounds
    assert "forever" not in str(viewer.get_json("/api/cameras")[1])
    wait_until(lambda: client.zscore("framebus:registry", "forever") is None, timeout=15)
    client.close()


def test_gateway_serves_no_frame_older_than_the_stale_limit_as_latest(start_service: Start) -> None:
    gateway = start_service("gateway", {"FRAME_STALE_SECONDS": "1"})
    assert post_frame(gateway, "once", 1) == 204
    assert gateway.get("/cameras/once/latest.jpg")[0] == 200
    time.sleep(1.5)
    status, body = gateway.get("/cameras/once/latest.jpg")
    assert status == 404 and b"FRAME_STALE_SECONDS" in body

    async def first_message_within(seconds: float) -> bool:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"{gateway.url}/cameras/once/ws") as ws,
        ):
            try:
                await asyncio.wait_for(ws.receive(), seconds)
            except TimeoutError:
                return False
            return True

    # A new subscriber is not handed the old frame: it waits for a fresh one.
    assert not asyncio.run(first_message_within(1.0))
