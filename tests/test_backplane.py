"""GATEWAY_BACKPLANE=redis: one bus. HTTP producers reach Redis consumers, Redis producers reach
WebSocket and HTTP readers, replicas share frames, and nothing is written twice."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import aiohttp
import redis

from shared.wire import from_stream_fields, stream_key
from shared.wire_ws import from_ws_message
from tests.fixtures import wait_until
from tests.fixtures.frames import post_frame
from tests.fixtures.processes import ServiceProcess
from tests.fixtures.servers import RedisServer
from tests.support.streams import all_entries

Start = Callable[..., ServiceProcess]


@contextmanager
def producing(gateway: ServiceProcess, camera: str, fps: float = 20.0) -> Iterator[list[int]]:
    """Posts frames with rising seq in a thread until the block ends; yields the statuses."""
    statuses: list[int] = []
    stop = threading.Event()

    def run() -> None:
        seq = 0
        while not stop.wait(1 / fps):
            seq += 1
            statuses.append(post_frame(gateway, camera, seq))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield statuses
    finally:
        stop.set()
        thread.join(timeout=5)


def receive_ws(url: str, count: int, timeout: float = 10.0) -> list[int]:
    """The seq of the first ``count`` frames a WebSocket subscriber receives."""

    async def read() -> list[int]:
        seqs: list[int] = []
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            async with asyncio.timeout(timeout):
                while len(seqs) < count:
                    message = await ws.receive()
                    assert message.type == aiohttp.WSMsgType.BINARY, message
                    meta, _ = from_ws_message(message.data)
                    seqs.append(meta.seq)
        return seqs

    return asyncio.run(read())


def backplane_gateway(start_service: Start, redis_server: RedisServer, **env: str) -> ServiceProcess:
    return start_service("gateway", {"GATEWAY_BACKPLANE": "redis", "REDIS_URL": redis_server.url, **env})


def test_http_producer_reaches_redis_consumers_through_the_backplane(
    redis_server: RedisServer, start_service: Start
) -> None:
    gateway = backplane_gateway(start_service, redis_server)
    client = redis.Redis.from_url(redis_server.url)
    for seq in (1, 2, 3):
        assert post_frame(gateway, "javacam", seq) == 204
    entries = all_entries(client, stream_key("javacam"))
    # The producer's own sequence numbers, in the same wire format capture writes.
    assert [from_stream_fields(fields)[0].seq for _, fields in entries] == [1, 2, 3]
    assert b"javacam" in client.zrange("framebus:registry", 0, -1)
    viewer = start_service("viewer", {"REDIS_URL": redis_server.url, "CAMERA_ID": "javacam"})
    with producing(gateway, "javacam") as statuses:
        viewer.wait_ready()
        # Live video, not only the three frames posted before the viewer started.
        wait_until(lambda: (viewer.get_json("/api/stats?camera=javacam")[1]["seq"] or 0) > 5, timeout=10)
    assert statuses and set(statuses) == {204}
    client.close()


def test_redis_producer_reaches_websocket_and_http_readers(
    redis_server: RedisServer, start_service: Start
) -> None:
    gateway = backplane_gateway(start_service, redis_server)
    start_service("capture", {"REDIS_URL": redis_server.url, "TRANSPORT": "redis"})
    seqs = receive_ws(f"{gateway.url}/cameras/cam0/ws", count=10)
    assert seqs == sorted(seqs) and len(set(seqs)) == 10
    status, _ = gateway.get("/cameras/cam0/latest.jpg")
    assert status == 200
    _, listing = gateway.get_json("/cameras")
    assert [entry["camera"] for entry in listing["cameras"]] == ["cam0"]
    assert listing["cameras"][0]["seq"] >= seqs[-1]


def test_backplane_writes_each_frame_once_and_forms_no_loop(
    redis_server: RedisServer, start_service: Start
) -> None:
    gateway = backplane_gateway(start_service, redis_server, REDIS_STREAM_MAXLEN="1000")
    client = redis.Redis.from_url(redis_server.url)
    assert post_frame(gateway, "loopcam", 1) == 204
    received: list[int] = []
    reader = threading.Thread(
        target=lambda: received.extend(receive_ws(f"{gateway.url}/cameras/loopcam/ws", count=5)), daemon=True
    )
    reader.start()  # a subscriber keeps the gateway's Redis reader of loopcam running
    wait_until(lambda: gateway.metric("framebus_subscribers", {"camera": "loopcam"}) == 1, timeout=5)
    for seq in range(2, 22):
        assert post_frame(gateway, "loopcam", seq) == 204
        time.sleep(0.02)
    reader.join(timeout=10)
    assert received and received == sorted(received)
    time.sleep(0.5)  # anything looping back would show up as extra entries
    seqs = [from_stream_fields(fields)[0].seq for _, fields in all_entries(client, stream_key("loopcam"))]
    assert seqs == list(range(1, 22))
    client.close()


def test_replicas_share_frames_through_the_backplane(redis_server: RedisServer, start_service: Start) -> None:
    replica_a = backplane_gateway(start_service, redis_server)
    replica_b = backplane_gateway(start_service, redis_server)
    with producing(replica_a, "shared") as statuses:
        seqs = receive_ws(f"{replica_b.url}/cameras/shared/ws", count=5)
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert set(statuses) == {204}


def test_backplane_reader_stops_after_the_last_subscriber_leaves(
    redis_server: RedisServer, start_service: Start
) -> None:
    gateway = backplane_gateway(start_service, redis_server)
    client = redis.Redis.from_url(redis_server.url)

    def blocked_readers() -> int:
        return int(client.info("clients")["blocked_clients"])

    assert post_frame(gateway, "idle", 1) == 204
    assert blocked_readers() == 0

    async def subscribe_for_a_while() -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(f"{gateway.url}/cameras/idle/ws"):
            await asyncio.to_thread(wait_until, lambda: blocked_readers() == 1, 5)

    asyncio.run(subscribe_for_a_while())
    wait_until(lambda: blocked_readers() == 0, timeout=5, message="the Redis reader outlived its subscribers")
    client.close()


def test_subscribers_that_leave_and_come_back_get_each_frame_once_from_one_reader(
    redis_server: RedisServer, start_service: Start
) -> None:
    """A reader whose cancellation lands as a reply arrives used to keep running: the next
    subscriber then started a second one, and every frame came twice."""
    gateway = backplane_gateway(start_service, redis_server)
    # 720p: big replies make the reader's reads long, where the cancellation used to get lost.
    start_service("capture", {"REDIS_URL": redis_server.url, "TRANSPORT": "redis"}).wait_ready()
    client = redis.Redis.from_url(redis_server.url)
    url = f"{gateway.url}/cameras/cam0/ws"

    async def subscribers_for(seconds: float, count: int = 60) -> list[list[int]]:
        async with aiohttp.ClientSession() as session:
            sockets = [await session.ws_connect(url) for _ in range(count)]
            seqs: list[list[int]] = [[] for _ in sockets]

            async def read(index: int) -> None:
                async for message in sockets[index]:
                    seqs[index].append(from_ws_message(message.data)[0].seq)

            readers = [asyncio.create_task(read(index)) for index in range(count)]
            await asyncio.sleep(seconds)
            for socket in sockets:
                await socket.close()
            await asyncio.gather(*readers, return_exceptions=True)
        return seqs

    for cycle in range(5):
        seqs = asyncio.run(subscribers_for(2.0))
        assert all(len(s) >= 20 for s in seqs), f"cycle {cycle}: a subscriber starved: {seqs}"
        assert all(len(s) == len(set(s)) for s in seqs), f"cycle {cycle}: frames came twice"
        wait_until(lambda: client.info("clients")["blocked_clients"] == 0, timeout=5)
    assert gateway.metric("framebus_sequence_restarts_total") in (None, 0.0)
    client.close()


def test_gateway_with_backplane_is_not_ready_and_refuses_ingest_while_redis_is_down(
    redis_server: RedisServer, start_service: Start
) -> None:
    gateway = backplane_gateway(start_service, redis_server)
    gateway.wait_ready()
    redis_server.kill()
    wait_until(lambda: gateway.get("/readyz")[0] == 503, timeout=6)
    assert post_frame(gateway, "cam0", 1) == 503
    assert gateway.metric("framebus_frames_rejected_total", {"reason": "backplane_down"}) == 1
