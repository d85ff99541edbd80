"""CAPTURE_ON_DEMAND: capture encodes a trickle until a consumer wants its frames, then full rate;
and unthrottled (CAPTURE_FPS=0), no faster than its fastest consumer takes frames."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import redis

from services.capture.service import PACE_HEADROOM
from shared.demand import demand_key
from tests.fixtures import wait_until
from tests.fixtures.processes import ServiceProcess, run_until_exit
from tests.fixtures.servers import RedisServer

Start = Callable[..., ServiceProcess]


def published_per_second(capture: ServiceProcess, seconds: float = 2.0) -> float:
    labels = {"camera": "cam0", "transport": "redis"}
    before = capture.metric("framebus_frames_published_total", labels) or 0.0
    time.sleep(seconds)
    return ((capture.metric("framebus_frames_published_total", labels) or 0.0) - before) / seconds


def test_capture_trickles_until_a_browser_watches_then_runs_at_full_rate(
    redis_server: RedisServer, start_service: Start
) -> None:
    capture = start_service(
        "capture", {"REDIS_URL": redis_server.url, "CAPTURE_ON_DEMAND": "true", "CAPTURE_IDLE_FPS": "1"}
    )
    viewer = start_service("viewer", {"REDIS_URL": redis_server.url, "VIEWER_WATCH_LINGER_SECONDS": "1"})
    viewer.wait_ready()  # the trickle keeps the camera live
    wait_until(
        lambda: (
            (
                capture.metric(
                    "framebus_frames_dropped_total",
                    {"camera": "cam0", "stage": "encode", "reason": "no_demand"},
                )
                or 0
            )
            > 30
        ),
        timeout=10,
    )
    assert published_per_second(capture) <= 2.0
    with subprocess.Popen(["curl", "-sN", "-o", "/dev/null", f"{viewer.url}/stream.mjpg"]) as browser:
        wait_until(lambda: "a consumer asked" in capture.log_text(), timeout=5, message=capture.log_tail)
        assert published_per_second(capture) >= 20.0  # the pattern runs at 30 fps
        browser.terminate()
    wait_until(lambda: "no consumer wants frames" in capture.log_text(), timeout=10, message=capture.log_tail)


def test_capture_on_demand_without_a_redis_transport_is_refused_naming_the_setting() -> None:
    result = run_until_exit("capture", {"CAPTURE_ON_DEMAND": "true", "TRANSPORT": "http"})
    assert result.returncode == 2
    assert "CAPTURE_ON_DEMAND" in result.stderr and "Traceback" not in result.stderr


def test_an_unthrottled_capture_encodes_at_its_fastest_consumers_pace(
    redis_server: RedisServer, start_service: Start
) -> None:
    small = {"CAPTURE_WIDTH": "320", "CAPTURE_HEIGHT": "240", "CAPTURE_FPS": "0"}
    capture = start_service("capture", {"REDIS_URL": redis_server.url, **small})
    capture.wait_ready()
    consumer = redis.Redis.from_url(redis_server.url)

    def say(pace: float) -> None:
        """A consumer's refresh: the marker as shared/demand.py's script leaves it."""
        consumer.set(demand_key("cam0"), f"{pace:g} {int(time.time() * 1000) + 3000}", px=3000)

    try:
        assert published_per_second(capture) > 60  # unthrottled, nobody asked for less
        say(12.0)
        wait_until(lambda: capture.metric("framebus_capture_consumer_pace_fps", {"camera": "cam0"}) == 12.0)
        say(12.0)
        assert published_per_second(capture, 3.0) <= 12.0 * PACE_HEADROOM * 1.1
        say(0.0)  # the consumer keeps up now: no cap
        wait_until(lambda: capture.metric("framebus_capture_consumer_pace_fps", {"camera": "cam0"}) == 0.0)
        assert published_per_second(capture) > 60
    finally:
        consumer.close()
