"""Logs operators can parse: JSON lines on request, state changes only, no secrets."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.fixtures import wait_until
from tests.fixtures.processes import ServiceProcess, watching
from tests.fixtures.servers import RedisServer


def test_services_write_one_json_object_per_line_when_asked(
    redis_server: RedisServer, start_service: Callable[..., ServiceProcess]
) -> None:
    common = {"LOG_FORMAT": "json", "REDIS_URL": redis_server.url}
    capture = start_service("capture", common)
    viewer = start_service("viewer", common)
    viewer.wait_ready()
    with watching(viewer, "cam0"):  # the viewer renders, and says "signal", once someone watches
        wait_until(lambda: "camera cam0: signal" in viewer.log_text(), timeout=10)
    for service in (capture, viewer):
        service.terminate()
        lines = [line for line in service.log_text().splitlines() if line.strip()]
        entries = [json.loads(line) for line in lines]  # every line is one JSON object
        assert {"ts", "level", "logger", "msg"} <= set(entries[0])
        assert any(entry["msg"] == "stopped" for entry in entries)


def test_a_steady_stream_logs_state_changes_not_frames(
    redis_server: RedisServer, start_service: Callable[..., ServiceProcess]
) -> None:
    capture = start_service("capture", {"REDIS_URL": redis_server.url})
    capture.wait_ready()
    wait_until(lambda: (capture.metric("framebus_frames_captured_total") or 0) >= 90, timeout=10)
    # Three seconds of 30 fps: a line per frame would be ~90 lines; state changes are a handful.
    assert len(capture.log_text().splitlines()) < 10, capture.log_text()
