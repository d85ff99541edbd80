"""Results on the bus: the wire format, the library, the gateway, the viewer and its overlay."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

import framebus
from shared.results import (
    MAX_BOXES,
    MAX_RESULT_BYTES,
    RESULTS_MAXLEN,
    FrameResult,
    ResultError,
    from_json,
    make_boxes,
    results_key,
    to_json,
)
from tests.fixtures import wait_until
from tests.fixtures.processes import REPO_ROOT, ServiceProcess
from tests.fixtures.servers import RedisServer
from tests.support.net import http_get
from tests.test_browser import browser, page, save_screenshot  # noqa: F401 - fixtures

Start = Callable[..., ServiceProcess]
TOKEN = "results-secret"
CAPTURE_640x360 = {"CAPTURE_FPS": "10", "CAPTURE_WIDTH": "640", "CAPTURE_HEIGHT": "360"}


def a_result(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "camera": "cam0",
        "seq": 7,
        "captured_ns": 1_700_000_000_000_000_000,
        "published_ns": 1_700_000_000_050_000_000,
        "width": 640,
        "height": 360,
        "boxes": [{"x": 10, "y": 20, "w": 30, "h": 40, "label": "cat", "score": 0.9}],
        "data": {"count": 1},
        "source": "test",
    }
    body.update(changes)
    return body


# --- the wire format ----------------------------------------------------------------------------


def test_a_result_round_trips_through_json_and_knows_its_latency() -> None:
    result = from_json(json.dumps(a_result()))
    assert from_json(to_json(result)) == result
    assert result.latency_seconds == pytest.approx(0.05)
    assert result.boxes[0].label == "cat"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"camera": "bad camera"}, "camera id"),
        ({"seq": -1}, "seq"),
        ({"seq": True}, "seq"),
        ({"width": 0}, "width"),
        ({"boxes": [{"x": 1, "y": 1, "w": -5, "h": 1}]}, "negative"),
        ({"boxes": [{"x": 1, "y": 1, "w": 5}]}, "lacks h"),
        ({"boxes": [{"x": 1, "y": 1, "w": 5, "h": 5, "score": 1.5}]}, "score"),
        ({"boxes": [{"x": 1, "y": 1, "w": 5, "h": 5, "colour": "red"}]}, "unknown box field"),
        ({"boxes": [{"x": 1, "y": 1, "w": 5, "h": 5, "label": "x" * 65}]}, "label"),
        ({"boxes": [{"x": 1, "y": 1, "w": 1, "h": 1}] * (MAX_BOXES + 1)}, "at most"),
        ({"data": [1, 2]}, "data must be a JSON object"),
        ({"extra": 1}, "unknown field"),
    ],
)
def test_invalid_results_are_refused_with_a_reason(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ResultError, match=message):
        from_json(json.dumps(a_result(**changes)))


def test_non_json_nan_deep_and_oversized_results_are_refused() -> None:
    with pytest.raises(ResultError, match="not JSON"):
        from_json(b"\xff{")
    with pytest.raises(ResultError, match="not JSON"):
        from_json(json.dumps(a_result()).replace('"score": 0.9', '"score": NaN'))
    with pytest.raises(ResultError, match="not JSON"):
        from_json("[" * 20_000 + "]" * 20_000)
    with pytest.raises(ResultError, match="exceeds"):
        from_json(json.dumps(a_result(data={"blob": "x" * MAX_RESULT_BYTES})))
    with pytest.raises(ResultError, match="exceeds"):
        to_json(FrameResult("cam0", 1, 0, 0, 10, 10, data={"blob": "x" * MAX_RESULT_BYTES}))


def test_a_result_posted_for_another_camera_is_refused() -> None:
    with pytest.raises(ResultError, match="sent for camera cam1"):
        from_json(json.dumps(a_result()), camera="cam1")


def test_boxes_accept_dicts_or_box_objects() -> None:
    boxes = make_boxes([{"x": 1, "y": 2, "w": 3, "h": 4}, framebus.Box(5, 6, 7, 8, "dog", 0.5)])
    assert [box.label for box in boxes] == ["", "dog"]


# --- the library and the bus --------------------------------------------------------------------


def test_results_stream_is_bounded_and_the_newest_is_read_back(redis_url: str) -> None:
    with framebus.ResultsPublisher(redis_url, source="counter") as results:
        for seq in range(1, 41):
            results.publish("cam0", seq, width=640, height=360, data={"n": seq})
        newest = results.latest("cam0")
    raw = redis.Redis.from_url(redis_url)
    assert raw.xlen(results_key("cam0")) == RESULTS_MAXLEN
    raw.close()
    assert newest is not None and newest.seq == 40 and newest.data == {"n": 40}
    assert newest.source == "counter"


def test_publishing_a_result_needs_the_frame_size() -> None:
    with pytest.raises(ResultError, match="width and height"):
        framebus.publish_results("cam0", 1, url="redis://127.0.0.1:1/0")


def test_a_result_that_cannot_be_delivered_raises_publish_failed() -> None:
    from tests.fixtures import free_port

    with (
        framebus.ResultsPublisher(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5) as results,
        pytest.raises(framebus.PublishFailed, match="ConnectionError"),
    ):
        results.publish("cam0", 1, width=10, height=10)


# --- the gateway --------------------------------------------------------------------------------


def post(gateway: ServiceProcess, body: bytes, headers: dict[str, str], camera: str = "cam0") -> int:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"{gateway.url}/cameras/{camera}/results", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_gateway_stores_the_newest_result_and_refuses_bad_posts(start_service: Start) -> None:
    gateway = start_service("gateway", {"GATEWAY_TOKEN": TOKEN})
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    assert http_get(f"{gateway.url}/cameras/cam0/results")[0] == 404
    assert post(gateway, json.dumps(a_result()).encode(), auth) == 204
    assert post(gateway, json.dumps(a_result(seq=8)).encode(), auth) == 204
    status, body = http_get(f"{gateway.url}/cameras/cam0/results")
    assert status == 200 and json.loads(body)["seq"] == 8

    assert post(gateway, json.dumps(a_result()).encode(), {"Content-Type": "application/json"}) == 401
    assert post(gateway, json.dumps(a_result()).encode(), {**auth, "Content-Type": "text/plain"}) == 415
    assert post(gateway, b"{not json", auth) == 400
    assert post(gateway, json.dumps(a_result(seq=-1)).encode(), auth) == 400
    assert post(gateway, json.dumps(a_result()).encode(), auth, camera="cam1") == 400
    assert post(gateway, b"x" * (MAX_RESULT_BYTES + 1), auth) == 413
    assert gateway.metric("framebus_results_rejected_total", {"reason": "invalid"}) == 3
    assert gateway.metric("framebus_results_received_total", {"camera": "cam0"}) == 2


# --- the viewer ---------------------------------------------------------------------------------


def newest_viewer_results(viewer: ServiceProcess, seq: int) -> dict[str, Any]:
    """The viewer's /api/results once it reports the result of frame ``seq`` as matching."""
    seen: dict[str, Any] = {}

    def arrived() -> bool:
        status, body = viewer.get_json("/api/results?camera=cam0")
        seen.update(body if status == 200 else {})
        return bool(status == 200 and body["result"] and body["result"]["seq"] >= seq and body["matches"])

    wait_until(arrived, timeout=10, message=f"viewer never showed result {seq}: {seen}")
    return seen


def assert_letterbox_placement(body: dict[str, Any]) -> None:
    # 640x360 in 600x600: scaled by 600/640 to 600x338, centred 131 px from the top.
    place = body["placement"]
    assert (place["x"], place["y"], place["width"], place["height"]) == (0, 131, 600, 600)
    assert place["scale_x"] == pytest.approx(600 / 640)
    assert place["scale_y"] == pytest.approx(338 / 360)


def publish_a_result_for_a_live_frame(url: str, token: str | None = None) -> framebus.FrameResult:
    with framebus.subscribe("cam0", url, timeout=15, token=token) as frames:
        frame = next(iter(frames))
    return framebus.publish_results(
        frame, boxes=[{"x": 64, "y": 36, "w": 128, "h": 72, "label": "thing", "score": 0.75}], url=url,
        token=token, data={"note": "hello"},
    )  # fmt: skip


def test_results_published_over_redis_appear_in_the_viewer(
    redis_server: RedisServer, start_service: Start
) -> None:
    common = {"REDIS_URL": redis_server.url}
    start_service("capture", {**common, **CAPTURE_640x360})
    viewer = start_service("viewer", common)
    viewer.wait_ready()
    assert viewer.get_json("/api/results?camera=cam0")[1]["result"] is None
    published = publish_a_result_for_a_live_frame(redis_server.url)
    body = newest_viewer_results(viewer, published.seq)
    assert body["result"]["boxes"] == [{"x": 64, "y": 36, "w": 128, "h": 72, "label": "thing", "score": 0.75}]
    assert body["result"]["data"] == {"note": "hello"}
    assert 0 <= body["latency_seconds"] < 10
    assert_letterbox_placement(body)


def test_results_published_through_the_gateway_appear_in_the_viewer(start_service: Start) -> None:
    gateway = start_service("gateway", {"GATEWAY_TOKEN": TOKEN})
    common = {"GATEWAY_URL": gateway.url, "TRANSPORT": "http"}
    start_service("capture", {**common, **CAPTURE_640x360, "GATEWAY_TOKEN": TOKEN})
    viewer = start_service("viewer", common)
    viewer.wait_ready()
    published = publish_a_result_for_a_live_frame(gateway.url, token=TOKEN)
    body = newest_viewer_results(viewer, published.seq)
    assert body["result"]["seq"] == published.seq
    assert_letterbox_placement(body)


def test_a_result_for_a_frame_long_gone_is_not_drawn(redis_server: RedisServer, start_service: Start) -> None:
    common = {"REDIS_URL": redis_server.url}
    start_service("capture", {**common, **CAPTURE_640x360})
    viewer = start_service("viewer", common)
    viewer.wait_ready()
    framebus.publish_results("cam0", 1, width=640, height=360, url=redis_server.url, boxes=[])
    # 10 fps: after 2.5 s the shown frame is more than 15 frames past seq 1.
    time.sleep(2.5)
    status, body = viewer.get_json("/api/results?camera=cam0")
    assert status == 200 and body["result"]["seq"] == 1
    assert body["matches"] is False


# --- the example algorithm ----------------------------------------------------------------------


# This checkout's framebus package, whatever the venv's editable install points at.
ALGORITHM_ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


def run_motion_boxes(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "examples/algorithm/motion_boxes.py", "--url", url, *args],
        cwd=REPO_ROOT,
        env=ALGORITHM_ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_example_algorithm_publishes_boxes_around_the_moving_ball(
    redis_server: RedisServer, start_service: Start
) -> None:
    common = {"REDIS_URL": redis_server.url}
    start_service("capture", {**common, **CAPTURE_640x360})
    viewer = start_service("viewer", common)
    done = run_motion_boxes(redis_server.url, "--camera", "cam0", "--frames", "15")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 15
    boxes = [int(line.split("boxes=")[1].split()[0]) for line in lines]
    assert max(boxes) >= 1, f"no motion found in a moving picture: {lines}"
    raw = redis.Redis.from_url(redis_server.url)
    newest = from_json(raw.xrevrange(results_key("cam0"), count=1)[0][1][b"result"])  # type: ignore[index]
    raw.close()
    assert newest.source == "motion_boxes" and newest.width == 640
    for box in newest.boxes:
        assert 0 <= box.x <= 640 and 0 <= box.y <= 360 and box.label == "motion"
    status, body = viewer.get_json("/api/results?camera=cam0")
    assert status == 200 and body["result"]["source"] == "motion_boxes"


@pytest.mark.browser
def test_page_draws_the_algorithms_boxes_over_the_live_picture(
    redis_server: RedisServer,
    start_service: Start,
    page: Any,  # noqa: F811 - fixture
    tmp_path: Path,
) -> None:
    common = {"REDIS_URL": redis_server.url}
    start_service("capture", {**common, **CAPTURE_640x360})
    viewer = start_service("viewer", common)
    viewer.wait_ready()
    algorithm = subprocess.Popen(
        [sys.executable, "examples/algorithm/motion_boxes.py", "--url", redis_server.url],
        cwd=REPO_ROOT,
        env=ALGORITHM_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        page.goto(f"{viewer.url}/?camera=cam0")
        page.wait_for_function(
            "() => Number(document.getElementById('overlay')?.dataset.boxes) > 0", timeout=20_000
        )
        assert page.locator("#algo-latency").text_content().endswith(" ms")
        # The canvas lies exactly over the picture.
        picture = page.locator("#stream").bounding_box()
        overlay = page.locator("#overlay").bounding_box()
        assert overlay == picture
        save_screenshot(page, tmp_path, "results-overlay.png")
    finally:
        algorithm.terminate()
        algorithm.wait(timeout=10)


# --- the walkthrough in docs/protocol.md ---------------------------------------------------------

WALKTHROUGH = re.compile(r"<!-- walkthrough: ([a-z0-9-]+) -->\s*```sh\n(.*?)```", re.DOTALL)


def walkthrough() -> dict[str, str]:
    return dict(WALKTHROUGH.findall((REPO_ROOT / "docs" / "protocol.md").read_text()))


def test_the_java_camera_to_browser_walkthrough_runs_as_written(start_service: Start, tmp_path: Path) -> None:
    blocks = walkthrough()
    assert set(blocks) == {"java-camera", "python-algorithm", "viewer-results"}
    gateway = start_service("gateway", {"GATEWAY_TOKEN": TOKEN})
    viewer = start_service("viewer", {"GATEWAY_URL": gateway.url, "TRANSPORT": "http"})
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(REPO_ROOT),
        "GATEWAY_URL": gateway.url,
        "VIEWER_URL": viewer.url,
        "GATEWAY_TOKEN": TOKEN,
    }

    def bash(name: str, **options: Any) -> Any:
        return subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", blocks[name]], cwd=REPO_ROOT, env=env, **options
        )

    logs = {name: (tmp_path / f"{name}.log").open("w") for name in ("java-camera", "python-algorithm")}
    # Own sessions: the blocks' processes (bash, then java or python) are stopped as a group.
    running = [bash(name, stdout=log, stderr=log, start_new_session=True) for name, log in logs.items()]
    seen: dict[str, Any] = {}

    def boxes_drawn() -> bool:
        curl = bash("viewer-results", stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        out, _ = curl.communicate(timeout=10)
        if curl.returncode != 0:
            return False  # 404 until the viewer has discovered javacam
        seen.update(json.loads(out))
        return bool(seen["matches"] and seen["result"]["boxes"])

    try:
        wait_until(boxes_drawn, timeout=60, message=f"no boxes for javacam in the viewer: {seen}")
    finally:
        for proc in running:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        for log in logs.values():
            log.close()
    assert seen["result"]["source"] == "motion_boxes"
    assert (seen["result"]["width"], seen["result"]["height"]) == (320, 240)
    assert 0 <= seen["latency_seconds"] < 5
