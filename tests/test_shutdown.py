"""SIGTERM, every time: each service, under load, stops within its grace time with exit code 0
in every one of many start/stop rounds (issue 11).

A hang here was a race (Python 3.11's ``asyncio.wait_for`` swallowing a cancellation), so one
round proves little: the rounds are what make it a test. The bound is the process wait
(SIGKILL after ``GRACE_SECONDS``, which shows up as exit code -9), not a speed claim.
"""

from __future__ import annotations

import contextlib
import http.client
import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from tests.fixtures import ServiceProcess, wait_until
from tests.fixtures.factories import ServiceFactory
from tests.fixtures.frames import GOOD_JPEG, frame_headers
from tests.fixtures.processes import watching
from tests.fixtures.servers import RedisServer

ROUNDS = 15
GRACE_SECONDS = 2.0
# Python's faulthandler dumps every thread's stack on SIGABRT: what a hung service was doing.
DIAGNOSTICS: dict[str, str | None] = {"PYTHONFAULTHANDLER": "1"}

pytestmark = pytest.mark.timeout(300)


def stop_and_check(service: ServiceProcess, round_no: int) -> None:
    """SIGTERM; after GRACE_SECONDS, SIGABRT, which makes Python's faulthandler (enabled by
    PYTHONFAULTHANDLER in every service this module starts) write each thread's stack to the log."""
    started = time.monotonic()
    service.send_signal(signal.SIGTERM)
    try:
        code = service.proc.wait(timeout=GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        service.send_signal(signal.SIGABRT)
        code = service.proc.wait(timeout=5)
    took = time.monotonic() - started
    assert code == 0, (
        f"round {round_no}: {service.name} ended with {code} {took:.2f}s after SIGTERM "
        f"(-6: still running after {GRACE_SECONDS:g}s, aborted; its thread stacks follow)\n"
        f"--- log tail ---\n{service.log_tail(60)}"
    )


def published(capture: ServiceProcess) -> float:
    return capture.metric("framebus_frames_published_total", {"transport": "redis"}) or 0.0


def settle() -> None:
    # Vary where in its loop each service is when SIGTERM lands.
    time.sleep(random.uniform(0.0, 0.4))


def test_capture_unthrottled_stops_on_sigterm_in_every_round(
    redis_server: RedisServer, start_service: ServiceFactory
) -> None:
    env: dict[str, str | None] = {
        "REDIS_URL": redis_server.url,
        "TRANSPORT": "redis",
        "CAPTURE_FPS": "0",
        "CAPTURE_WIDTH": "640",
        "CAPTURE_HEIGHT": "480",
    }
    for round_no in range(1, ROUNDS + 1):
        capture = start_service("capture", {**env, **DIAGNOSTICS})
        wait_until(lambda c=capture: published(c) > 20, timeout=15, message=capture.log_tail)  # type: ignore[misc]
        settle()
        stop_and_check(capture, round_no)


@contextlib.contextmanager
def posting(port: int, camera: str) -> Iterator[list[int]]:
    """A producer posting frames over one keep-alive connection as fast as it can."""
    stop = threading.Event()
    statuses: list[int] = []

    def run() -> None:
        seq = 0
        while not stop.is_set():
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                while not stop.is_set():
                    seq += 1
                    connection.request("POST", f"/cameras/{camera}/frames", GOOD_JPEG, frame_headers(seq))
                    response = connection.getresponse()
                    response.read()
                    statuses.append(response.status)
            except OSError:
                time.sleep(0.05)  # the gateway is stopping or not up yet
            finally:
                connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield statuses
    finally:
        stop.set()
        thread.join(timeout=5)


def test_gateway_with_a_producer_posting_stops_on_sigterm_in_every_round(
    start_service: ServiceFactory,
) -> None:
    for round_no in range(1, ROUNDS + 1):
        gateway = start_service("gateway", DIAGNOSTICS)
        with posting(gateway.port, "cam0") as statuses:
            wait_until(lambda s=statuses: s.count(204) > 20, timeout=10, message=gateway.log_tail)  # type: ignore[misc]
            settle()
            stop_and_check(gateway, round_no)


def rendered(viewer: ServiceProcess) -> float:
    return viewer.metric("framebus_frames_rendered_total", {"camera": "cam0"}) or 0.0


def test_viewer_following_a_live_camera_stops_on_sigterm_in_every_round(
    redis_server: RedisServer, start_service: ServiceFactory
) -> None:
    start_service("capture", {"REDIS_URL": redis_server.url, "TRANSPORT": "redis", "CAMERA_ID": "cam0"})
    env: dict[str, str | None] = {"REDIS_URL": redis_server.url, "TRANSPORT": "redis", "CAMERA_ID": "cam0"}
    for round_no in range(1, ROUNDS + 1):
        viewer = start_service("viewer", {**env, **DIAGNOSTICS})
        with watching(viewer, "cam0"):  # a browser: the viewer renders only what is watched
            wait_until(lambda v=viewer: rendered(v) > 5, timeout=15, message=viewer.log_tail)  # type: ignore[misc]
            settle()
            stop_and_check(viewer, round_no)
