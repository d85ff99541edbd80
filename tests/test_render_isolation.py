"""One camera's costly frames must not starve another camera of the viewer's render threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import cv2
import numpy as np

from tests.fixtures import wait_until
from tests.fixtures.frames import post_frame
from tests.fixtures.processes import ServiceProcess, watching

Start = Callable[..., ServiceProcess]
COSTLY = (3000, 3000)  # a progressive 9 MP JPEG: ~0.2 s to decode even at 1/8 scale here


def costly_jpeg() -> bytes:
    width, height = COSTLY
    noise = np.random.default_rng(1).integers(0, 40, (height, width, 3), dtype=np.uint8)
    image = noise + np.linspace(0, 200, width, dtype=np.uint8)[None, :, None]
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80, cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert ok
    return encoded.tobytes()


@contextmanager
def costly_senders(gateway: ServiceProcess, cameras: list[str], fps: float) -> Iterator[None]:
    jpeg = costly_jpeg()
    stop = threading.Event()

    def send(camera: str) -> None:
        seq = 0
        while not stop.wait(1 / fps):
            seq += 1
            post_frame(gateway, camera, seq, size=COSTLY, jpeg=jpeg)

    threads = [threading.Thread(target=send, args=(camera,), daemon=True) for camera in cameras]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)


def shown_fps(viewer: ServiceProcess, camera: str, seconds: float = 3.0) -> float:
    """Frames the viewer rendered for the camera per second, over ``seconds``."""
    labels = {"camera": camera}
    before = viewer.metric("framebus_frames_rendered_total", labels) or 0.0
    time.sleep(seconds)
    return ((viewer.metric("framebus_frames_rendered_total", labels) or 0.0) - before) / seconds


def test_costly_frames_of_two_cameras_leave_a_healthy_camera_its_rate(start_service: Start) -> None:
    gateway = start_service("gateway")
    start_service("capture", {"TRANSPORT": "http", "GATEWAY_URL": gateway.url})
    viewer = start_service(
        "viewer",
        {
            "TRANSPORT": "http",
            "GATEWAY_URL": gateway.url,
            "VIEWER_CAMERAS": "bad1,bad2",
            "VIEWER_DISCOVERY_SECONDS": "0.5",
        },
    )
    viewer.wait_ready()
    with watching(viewer, "cam0", "bad1", "bad2"):  # rendered only while watched
        wait_until(lambda: shown_fps(viewer, "cam0", 1.0) > 20, timeout=10)
        alone = shown_fps(viewer, "cam0")
        with costly_senders(gateway, ["bad1", "bad2"], fps=8):
            wait_until(lambda: viewer.get_json("/api/stats?camera=bad1")[1]["degraded"], timeout=10)
            beside_bad_ones = shown_fps(viewer, "cam0")
            _, ready = viewer.get_json("/readyz")
            assert viewer.metric("framebus_camera_degraded", {"camera": "bad2"}) == 1
    assert "bad1" in ready["checks"]["cameras"]["detail"]
    assert not viewer.get_json("/api/stats?camera=cam0")[1]["degraded"]
    # Without isolation both render threads decode the costly frames and cam0 falls to a few fps.
    assert beside_bad_ones >= 0.6 * alone, f"cam0 fell from {alone:.1f} to {beside_bad_ones:.1f} fps"
