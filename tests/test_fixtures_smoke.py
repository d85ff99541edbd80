"""The fixtures in conftest.py really start, stop and restart real servers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable

import cv2
import numpy as np
import pytest
import redis

from tests.fixtures import RtspFactory, free_port, wait_until
from tests.fixtures.servers import RedisServer
from tests.support.net import port_open


def read_one_frame(url: str, timeout_s: float = 5.0) -> np.ndarray | None:
    """Open ``url`` with OpenCV/FFmpeg (bounded timeouts) and return one decoded frame."""
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
        int(timeout_s * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
        int(timeout_s * 1000),
    ]
    cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
    try:
        if not cap.isOpened():
            return None
        ok, frame = cap.read()
        return frame if ok else None
    finally:
        cap.release()


@pytest.fixture(autouse=True)
def _ffmpeg_tcp(monkeypatch: pytest.MonkeyPatch) -> None:
    # Setting these replaces OpenCV's defaults, so TCP must be named explicitly.
    monkeypatch.setenv(
        "OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp|analyzeduration;100000|probesize;32768"
    )


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_wait_until_returns_value_and_times_out() -> None:
    calls = iter(range(10))
    assert wait_until(lambda: next(calls) >= 3, timeout=2, interval=0.001) is True
    with pytest.raises(TimeoutError, match="never"):
        wait_until(lambda: False, timeout=0.05, interval=0.01, message="never")


def test_redis_server_answers_and_survives_restart_on_same_port(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url, socket_timeout=2)
    try:
        assert client.ping() is True
        client.set("k", "v")
        port = redis_server.port

        redis_server.kill()
        assert not redis_server.running
        with pytest.raises(redis.ConnectionError):
            client.ping()

        redis_server.start()
        assert redis_server.port == port
        assert redis_server.url == f"redis://127.0.0.1:{port}/0"
        assert client.ping() is True  # redis-py reconnects on the next command
        assert client.get("k") is None  # no persistence: a restart is a clean Redis

        redis_server.stop()
        assert not redis_server.ping()
    finally:
        client.close()


def test_redis_can_move_to_another_port(start_redis: Callable[..., RedisServer]) -> None:
    server = start_redis()
    old = server.port
    server.stop()
    new = free_port()
    server.start(port=new)
    assert server.port == new and server.ping()
    assert not port_open(old)


@pytest.mark.parametrize(("width", "height"), [(640, 480), (320, 240)])
def test_rtsp_server_serves_frames_opencv_reads(rtsp_server: RtspFactory, width: int, height: int) -> None:
    server = rtsp_server(width=width, height=height, fps=15)
    assert server.url == f"rtsp://127.0.0.1:{server.port}/test"
    frame = read_one_frame(server.url)
    assert frame is not None, f"no frame from {server.url}:\n{server.log_text()}"
    assert frame.shape == (height, width, 3)
    assert frame.dtype == np.uint8
    assert frame.std() > 0  # a real picture, not an empty buffer


def test_rtsp_server_restarts_on_same_port(rtsp_server: RtspFactory) -> None:
    server = rtsp_server(width=320, height=240, fps=15)
    port = server.port
    server.restart()
    assert server.port == port and server.starts == 2
    frame = read_one_frame(server.url)
    assert frame is not None and frame.shape == server.shape


def test_rtsp_server_freeze_and_kill(rtsp_server: RtspFactory) -> None:
    server = rtsp_server(width=320, height=240, fps=15)
    server.stop_signal()
    # frozen: the kernel still accepts TCP connections, but no RTSP answer comes back
    assert port_open(server.port)
    assert read_one_frame(server.url, timeout_s=1.0) is None
    server.cont()
    assert read_one_frame(server.url) is not None
    server.kill()
    assert not server.running
    assert not port_open(server.port)


def test_service_fixture_runs_a_real_process(tmp_path: object) -> None:
    """The ServiceProcess machinery, with a tiny stand-in HTTP server (independent of services/)."""
    from pathlib import Path

    from tests.fixtures.processes import ServiceProcess
    from tests.support.net import http_get

    assert isinstance(tmp_path, Path)
    port = free_port()
    log_path = tmp_path / "stub.log"
    code = (
        "import http.server, sys\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200 if self.path == '/livez' else 404); self.end_headers()\n"
        "    def log_message(self, *a): print('GET', self.path, flush=True)\n"
        f"http.server.HTTPServer(('127.0.0.1', {port}), H).serve_forever()\n"
    )
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    stub = ServiceProcess("stub", port, proc, log_path, {})
    try:
        stub.wait_live(timeout=10)
        assert stub.url == f"http://127.0.0.1:{port}"
        assert http_get(stub.url + "/nope")[0] == 404
        assert "GET /livez" in stub.log_text()
    finally:
        code_, elapsed = stub.terminate(timeout=5)
    assert code_ == -15 and elapsed < 5
    assert not stub.running
