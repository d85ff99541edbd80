"""Clients that stop reading are dropped, so they can neither lock others out nor hold memory."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from urllib.parse import urlsplit

import aiohttp

from shared.wire_ws import from_ws_message
from tests.fixtures import wait_until
from tests.fixtures.frames import jpeg_frame, post_frame
from tests.fixtures.processes import ServiceProcess
from tests.fixtures.servers import RedisServer
from tests.support.memory import memory_mib

Start = Callable[..., ServiceProcess]
BIG = (640, 480)  # random pixels: a ~250 KiB JPEG, so unread bytes pile up quickly


def non_reading_socket(url: str, request: str) -> socket.socket:
    """Sends one request and then never reads; a tiny receive buffer fills at once."""
    parts = urlsplit(url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((parts.hostname, parts.port))
    sock.sendall(request.encode())
    return sock


@contextmanager
def non_readers(url: str, request: str, count: int) -> Iterator[list[socket.socket]]:
    with ExitStack() as stack:
        yield [stack.enter_context(non_reading_socket(url, request)) for _ in range(count)]


@contextmanager
def producing_big_frames(gateway: ServiceProcess, camera: str) -> Iterator[None]:
    jpegs = [jpeg_frame(n, *BIG) for n in range(4)]
    stop = threading.Event()

    def run() -> None:
        seq = 0
        while not stop.wait(0.05):
            seq += 1
            post_frame(gateway, camera, seq, size=BIG, jpeg=jpegs[seq % 4])

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def count_ws_frames(url: str, seconds: float) -> int:
    async def read() -> int:
        received = 0
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + seconds
            while (left := deadline - loop.time()) > 0:
                try:
                    message = await asyncio.wait_for(ws.receive(), left)
                except TimeoutError:
                    break
                from_ws_message(message.data)
                received += 1
        return received

    return asyncio.run(read())


WS_UPGRADE = (
    "GET /cameras/big/ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def test_gateway_closes_websocket_subscribers_that_never_read(start_service: Start) -> None:
    gateway = start_service("gateway", {"GATEWAY_SUBSCRIBER_STALL_SECONDS": "1"})
    with producing_big_frames(gateway, "big"), non_readers(gateway.url, WS_UPGRADE, 20):
        wait_until(lambda: (gateway.metric("framebus_subscribers", {"camera": "big"}) or 0) == 20, timeout=5)
        wait_until(
            lambda: (gateway.metric("framebus_subscribers_evicted_total", {"camera": "big"}) or 0) >= 20,
            timeout=10,
            message="non-reading subscribers were never closed",
        )
        wait_until(lambda: gateway.metric("framebus_subscribers", {"camera": "big"}) == 0, timeout=5)
        # A subscriber that reads still gets the stream, however many stalled beside it.
        assert count_ws_frames(f"{gateway.url}/cameras/big/ws", seconds=2.0) >= 10


def test_viewer_evicts_stalled_mjpeg_clients_so_browsers_get_in(
    redis_server: RedisServer, start_service: Start
) -> None:
    start_service("capture", {"REDIS_URL": redis_server.url})
    viewer = start_service(
        "viewer",
        {"REDIS_URL": redis_server.url, "VIEWER_MAX_CLIENTS": "10", "VIEWER_CLIENT_STALL_SECONDS": "1"},
    )
    viewer.wait_ready()
    request = "GET /stream.mjpg HTTP/1.1\r\nHost: test\r\n\r\n"
    with non_readers(viewer.url, request, 10):
        wait_until(lambda: viewer.metric("framebus_mjpeg_clients", {"camera": "cam0"}) == 10, timeout=5)
        assert viewer.get("/stream.mjpg", timeout=2)[0] == 503
        wait_until(
            lambda: (viewer.metric("framebus_mjpeg_evicted_total") or 0) >= 10,
            timeout=15,
            message="stalled stream clients were never evicted",
        )
        assert viewer.metric("framebus_mjpeg_clients", {"camera": "cam0"}) == 0
        _, ready = viewer.get_json("/readyz")
        assert "0 of 10 stream clients" in ready["checks"]["clients"]["detail"]


def test_viewer_with_200_stalled_stream_clients_stops_well_within_two_seconds(
    redis_server: RedisServer, start_service: Start
) -> None:
    start_service("capture", {"REDIS_URL": redis_server.url})
    viewer = start_service("viewer", {"REDIS_URL": redis_server.url})
    viewer.wait_ready()
    request = "GET /stream.mjpg HTTP/1.1\r\nHost: test\r\n\r\n"
    with non_readers(viewer.url, request, 200):
        wait_until(lambda: viewer.metric("framebus_mjpeg_clients", {"camera": "cam0"}) == 200, timeout=10)
        time.sleep(1.0)  # their buffers fill up
        code, seconds = viewer.terminate()
    assert code == 0, viewer.log_tail()
    assert seconds < 1.5, f"the viewer took {seconds:.2f}s to stop"


def test_gateway_memory_comes_back_after_subscribers_that_never_read(start_service: Start) -> None:
    gateway = start_service("gateway", {"GATEWAY_SUBSCRIBER_STALL_SECONDS": "1"})
    with producing_big_frames(gateway, "big"):
        time.sleep(1.0)
        before = memory_mib(gateway.pid)
        with non_readers(gateway.url, WS_UPGRADE, 100):
            wait_until(
                lambda: (gateway.metric("framebus_subscribers_evicted_total", {"camera": "big"}) or 0) >= 100,
                timeout=15,
            )
        time.sleep(1.0)
        after = memory_mib(gateway.pid)
    # Each non-reader held at most one frame and ~64 KiB of buffer, and gave it all back.
    assert after - before < 40, f"gateway RSS {before:.0f} -> {after:.0f} MB"
