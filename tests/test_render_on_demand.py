"""The viewer renders a camera only while someone watches it; an unwatched camera costs nothing."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Callable

import cv2
import numpy as np

from tests.fixtures import wait_until
from tests.fixtures.processes import ServiceProcess
from tests.fixtures.servers import RedisServer

Start = Callable[..., ServiceProcess]


def counters(viewer: ServiceProcess) -> tuple[float, float]:
    received = (
        viewer.metric("framebus_frames_received_total", {"camera": "cam0", "transport": "redis"}) or 0.0
    )
    rendered = viewer.metric("framebus_frames_rendered_total", {"camera": "cam0"}) or 0.0
    return received, rendered


def live_snapshot(viewer: ServiceProcess, width: int) -> bytes:
    """The snapshot at ``width`` if it shows a live picture, else b"" (a card)."""
    with urllib.request.urlopen(f"{viewer.url}/snapshot.jpg?width={width}", timeout=5) as response:
        return bytes(response.read()) if response.headers["X-Frame-Live"] == "1" else b""


def idle_viewer(redis_server: RedisServer, start_service: Start) -> tuple[ServiceProcess, ServiceProcess]:
    capture = start_service("capture", {"REDIS_URL": redis_server.url})
    viewer = start_service("viewer", {"REDIS_URL": redis_server.url, "VIEWER_WATCH_LINGER_SECONDS": "1"})
    viewer.wait_ready()  # ready on discovery's word alone: the camera publishes
    return capture, viewer


def test_an_unwatched_camera_is_neither_fetched_nor_rendered(
    redis_server: RedisServer, start_service: Start
) -> None:
    capture, viewer = idle_viewer(redis_server, start_service)
    before = counters(viewer)
    time.sleep(2.0)
    published = (
        capture.metric("framebus_frames_published_total", {"camera": "cam0", "transport": "redis"}) or 0
    )
    assert published > 30  # the camera runs at 30 fps meanwhile
    assert counters(viewer) == before
    _, listing = viewer.get_json("/api/cameras")
    assert listing["cameras"][0]["live"] is True
    assert viewer.metric("framebus_camera_watched", {"camera": "cam0"}) == 0


def test_a_snapshot_of_an_idle_camera_is_a_fresh_live_picture(
    redis_server: RedisServer, start_service: Start
) -> None:
    capture, viewer = idle_viewer(redis_server, start_service)
    time.sleep(1.5)
    published = (
        capture.metric("framebus_frames_published_total", {"camera": "cam0", "transport": "redis"}) or 0
    )
    status, _ = viewer.get("/snapshot.jpg")
    assert status == 200
    _, stats = viewer.get_json("/api/stats")
    # The picture is of a frame published after the request, not one kept from before.
    assert stats["live"] and stats["seq"] >= published
    assert stats["dropped"].get("upstream_gap", 0) == 0  # frames nobody wanted are no gap


def test_rendering_follows_the_browsers_watching(redis_server: RedisServer, start_service: Start) -> None:
    _, viewer = idle_viewer(redis_server, start_service)
    with subprocess.Popen(["curl", "-sN", "-o", "/dev/null", f"{viewer.url}/stream.mjpg"]) as browser:
        wait_until(lambda: viewer.metric("framebus_camera_watched", {"camera": "cam0"}) == 1, timeout=5)
        _, rendered = counters(viewer)
        wait_until(
            lambda: counters(viewer)[1] > rendered + 20, timeout=5, message="a watched camera is not rendered"
        )
        browser.terminate()
    wait_until(lambda: viewer.metric("framebus_camera_watched", {"camera": "cam0"}) == 0, timeout=5)
    _, stopped_at = counters(viewer)
    time.sleep(1.0)
    assert counters(viewer)[1] <= stopped_at + 1  # at most the frame already in flight


def test_snapshots_come_at_the_size_asked_within_a_bounded_set(
    redis_server: RedisServer, start_service: Start
) -> None:
    _, viewer = idle_viewer(redis_server, start_service)
    # An idle camera's snapshot waits up to a second for its first render; on a busy machine
    # that can still be the "waiting" card, which keeps its own size: ask until it is live.
    body = wait_until(lambda: live_snapshot(viewer, 320), timeout=10)
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape == (320, 320, 3)  # the stream's 600x600, asked at 320 wide
    status, body = viewer.get("/snapshot.jpg?width=321")
    assert status == 400 and b"width must be one of" in body
