"""CAPTURE_ON_DEMAND: capture encodes a trickle until a consumer wants its frames, then full rate."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

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
