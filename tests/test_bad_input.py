"""Bad input is refused clearly, counted, and changes nothing else.

* Gateway ingest: each bad request gets its 4xx with a message, bumps
  ``framebus_frames_rejected_total{reason}``, and the camera's latest.jpg is still the last good frame.
* Malformed Redis entries written straight into a stream are skipped and counted by the viewer.
* Invalid settings make a service exit non-zero at start with one line naming the variable.
"""

from __future__ import annotations

import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.typing import EncodableT, FieldT

from tests.fixtures import ServiceFactory, ServiceProcess, start_service_process, wait_until
from tests.fixtures.frames import GOOD_JPEG, frame_headers, post, rejected, viewer_seq
from tests.fixtures.processes import run_until_exit
from tests.fixtures.servers import RedisServer

MAX_FRAME_BYTES = 64 * 1024
BODY_TIMEOUT_SECONDS = 1.0


def raw_exchange(port: int, head: bytes, body_start: bytes, timeout: float = 10.0) -> bytes:
    """Send headers and the start of a body, then wait (sending nothing more) for the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head + body_start)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
        return received


RAW_FRAME_HEADERS = (
    f"X-Frame-Seq: 101\r\nX-Frame-Captured-Ns: {time.time_ns()}\r\n"
    "X-Frame-Width: 64\r\nX-Frame-Height: 48\r\n"
).encode()


def without_quantization_tables(jpeg: bytes) -> bytes:
    """A JPEG whose header is well formed but which no decoder can decode (no DQT segment)."""
    pos, out = 2, jpeg[:2]
    while jpeg[pos + 1] != 0xDA:  # up to the start of scan
        length = int.from_bytes(jpeg[pos + 2 : pos + 4], "big")
        if jpeg[pos + 1] != 0xDB:
            out += jpeg[pos : pos + 2 + length]
        pos += 2 + length
    return out + jpeg[pos:]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """One gateway for the module (every test uses its own camera id, so they do not interact)."""
    env = {
        "GATEWAY_MAX_FRAME_BYTES": str(MAX_FRAME_BYTES),
        "GATEWAY_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT_SECONDS),
    }
    service = start_service_process("gateway", env, None, tmp_path_factory.mktemp("gateway-logs"))
    yield service
    service.terminate(5.0)
    assert "Traceback" not in service.log_text()


def seed_good_frame(gateway: ServiceProcess, camera: str, seq: int = 100) -> bytes:
    status, text = post(gateway, camera, GOOD_JPEG, frame_headers(seq))
    assert status == 204, text
    return GOOD_JPEG


def assert_latest_unchanged(gateway: ServiceProcess, camera: str, seq: int = 100) -> None:
    with urllib.request.urlopen(f"{gateway.url}/cameras/{camera}/latest.jpg", timeout=2) as response:
        assert response.headers["X-Frame-Seq"] == str(seq)
        assert response.read() == GOOD_JPEG


BAD_HEADERS = [
    ("missing_seq", {"X-Frame-Seq": "<absent>"}),
    ("negative_seq", {"X-Frame-Seq": "-1"}),
    ("text_seq", {"X-Frame-Seq": "twelve"}),
    ("float_seq", {"X-Frame-Seq": "1.5"}),
    ("huge_seq", {"X-Frame-Seq": "99999999999999999999"}),
    ("superscript_seq", {"X-Frame-Seq": "\u00b2"}),
    ("missing_timestamp", {"X-Frame-Captured-Ns": "<absent>"}),
    ("bad_timestamp", {"X-Frame-Captured-Ns": "yesterday"}),
    ("bad_sent_timestamp", {"X-Frame-Sent-Ns": "-5"}),
    ("zero_width", {"X-Frame-Width": "0"}),
    ("huge_height", {"X-Frame-Height": "100000"}),
]


@pytest.mark.parametrize(("case", "override"), BAD_HEADERS, ids=[c for c, _ in BAD_HEADERS])
def test_ingest_refuses_bad_metadata_headers_with_400(
    gateway: ServiceProcess, case: str, override: dict[str, str]
) -> None:
    camera = f"hdr-{case}"
    seed_good_frame(gateway, camera)
    before = rejected(gateway, "bad_headers")
    # urllib encodes header values as latin-1, so "²" really goes out as a non-ASCII byte.
    status, text = post(gateway, camera, GOOD_JPEG, frame_headers(101, **override))
    assert status == 400, text
    assert text.strip(), "a refusal must say why"
    assert rejected(gateway, "bad_headers") == before + 1
    assert_latest_unchanged(gateway, camera)


def test_ingest_refuses_wrong_content_type_with_415(gateway: ServiceProcess) -> None:
    seed_good_frame(gateway, "ctype")
    before = rejected(gateway, "content_type")
    status, text = post(gateway, "ctype", GOOD_JPEG, frame_headers(101, **{"Content-Type": "image/png"}))
    assert status == 415
    assert "image/jpeg" in text
    assert rejected(gateway, "content_type") == before + 1
    assert_latest_unchanged(gateway, "ctype")


@pytest.mark.parametrize(
    ("case", "body", "message"),
    [
        ("empty", b"", "empty body"),
        ("not_jpeg", b"GIF89a" + b"\0" * 500, "not a JPEG"),
        ("truncated", GOOD_JPEG[: len(GOOD_JPEG) // 2], "truncated"),
    ],
)
def test_ingest_refuses_bodies_that_are_not_whole_jpegs_with_400(
    gateway: ServiceProcess, case: str, body: bytes, message: str
) -> None:
    camera = f"body-{case}"
    seed_good_frame(gateway, camera)
    before = rejected(gateway, "not_jpeg")
    status, text = post(gateway, camera, body, frame_headers(101))
    assert status == 400
    assert message in text
    assert rejected(gateway, "not_jpeg") == before + 1
    assert_latest_unchanged(gateway, camera)


@pytest.mark.parametrize("camera", ["a.b", "%3Cscript%3E", "x" * 65, "cam%200"])
def test_ingest_refuses_invalid_camera_ids_with_400(gateway: ServiceProcess, camera: str) -> None:
    before = rejected(gateway, "bad_camera")
    status, text = post(gateway, camera, GOOD_JPEG, frame_headers(1))
    assert status == 400
    assert "camera id must match" in text
    assert "<script>" not in text  # the refusal does not echo what it refused
    assert rejected(gateway, "bad_camera") == before + 1
    _, body = gateway.get_json("/cameras")
    assert all(entry["camera"] != camera for entry in body["cameras"])


def test_ingest_refuses_a_declared_oversized_body_with_413_without_reading_it(
    gateway: ServiceProcess,
) -> None:
    seed_good_frame(gateway, "huge")
    before = rejected(gateway, "too_large")
    head = (
        b"POST /cameras/huge/frames HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
        + RAW_FRAME_HEADERS
        + b"Content-Length: 1000000000\r\n\r\n"
    )
    # Only a few bytes of the announced gigabyte are sent: an answer proves it did not wait for more.
    answer = raw_exchange(gateway.port, head, GOOD_JPEG[:10])
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert rejected(gateway, "too_large") == before + 1
    assert_latest_unchanged(gateway, "huge")


def test_ingest_refuses_an_undeclared_oversized_chunked_body_with_413(gateway: ServiceProcess) -> None:
    seed_good_frame(gateway, "chunked")
    before = rejected(gateway, "too_large")
    big = GOOD_JPEG[:3] + os.urandom(MAX_FRAME_BYTES * 2) + b"\xff\xd9"
    status, text = post(gateway, "chunked", big, {**frame_headers(101), "Transfer-Encoding": "chunked"})
    assert status == 413
    assert str(MAX_FRAME_BYTES) in text
    assert rejected(gateway, "too_large") == before + 1
    assert_latest_unchanged(gateway, "chunked")


def test_ingest_times_out_a_body_that_stalls_with_408(gateway: ServiceProcess) -> None:
    seed_good_frame(gateway, "slow")
    before = rejected(gateway, "body_timeout")
    head = (
        b"POST /cameras/slow/frames HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
        + RAW_FRAME_HEADERS
        + f"Content-Length: {len(GOOD_JPEG)}\r\n\r\n".encode()
    )
    answer = raw_exchange(gateway.port, head, GOOD_JPEG[:20], timeout=BODY_TIMEOUT_SECONDS + 8)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert rejected(gateway, "body_timeout") == before + 1
    assert_latest_unchanged(gateway, "slow")


def test_ingest_accepts_a_sequence_going_backwards_as_a_producer_restart(gateway: ServiceProcess) -> None:
    seed_good_frame(gateway, "restart", seq=100)
    labels = {"camera": "restart"}
    before = gateway.metric("framebus_sequence_restarts_total", labels) or 0.0
    status, _ = post(gateway, "restart", GOOD_JPEG, frame_headers(1))
    assert status == 204
    assert gateway.metric("framebus_sequence_restarts_total", labels) == before + 1
    with urllib.request.urlopen(f"{gateway.url}/cameras/restart/latest.jpg", timeout=2) as response:
        assert response.headers["X-Frame-Seq"] == "1"


# --- malformed Redis entries ------------------------------------------------------------------


def malformed(viewer: ServiceProcess, reason: str) -> float:
    return viewer.metric("framebus_malformed_frames_total", {"transport": "redis", "reason": reason}) or 0.0


def good_fields(seq: int, camera: str = "cam0") -> dict[FieldT, EncodableT]:
    now = time.time_ns()
    return {
        "camera": camera,
        "seq": seq,
        "captured_ns": now,
        "sent_ns": now,
        "width": 64,
        "height": 48,
        "jpeg": GOOD_JPEG,
    }


MALFORMED_ENTRIES: list[tuple[str, str, dict[FieldT, EncodableT]]] = [
    ("missing_jpeg", "bad_entry", {k: v for k, v in good_fields(0).items() if k != "jpeg"}),
    ("missing_seq", "bad_entry", {k: v for k, v in good_fields(0).items() if k != "seq"}),
    ("text_seq", "bad_entry", {**good_fields(0), "seq": "NaN"}),
    ("garbage_camera", "bad_entry", {**good_fields(0), "camera": b"\xff\xfe\x00"}),
    ("not_a_jpeg", "bad_entry", {**good_fields(0), "jpeg": os.urandom(500)}),
    ("only_garbage", "bad_entry", {"\x01": os.urandom(64)}),
    ("wrong_camera", "camera_mismatch", good_fields(0, camera="cam9")),
    # A well-formed header that passes the wire check but does not decode: caught in the render stage.
    ("undecodable", "undecodable", {**good_fields(0), "jpeg": without_quantization_tables(GOOD_JPEG)}),
]


def test_viewer_skips_and_counts_malformed_redis_entries_and_keeps_going(
    redis_server: RedisServer, start_service: ServiceFactory
) -> None:
    viewer = start_service("viewer", {"REDIS_URL": redis_server.url, "TRANSPORT": "redis"})
    client = redis.Redis.from_url(redis_server.url)
    stream = "framebus:frames:cam0"
    seq = 1
    client.xadd(stream, good_fields(seq))
    wait_until(lambda: viewer_seq(viewer) == 1, timeout=10, message=viewer.log_tail)
    for case, reason, fields in MALFORMED_ENTRIES:
        before = malformed(viewer, reason)
        fields = {**fields, "seq": seq + 1} if case in ("wrong_camera", "undecodable") else fields
        client.xadd(stream, fields)
        wait_until(lambda r=reason, b=before: malformed(viewer, r) > b, timeout=5, message=case)  # type: ignore[misc]
        # ...and a good frame after it is still shown.
        seq += 2
        client.xadd(stream, good_fields(seq))
        wait_until(lambda s=seq: viewer_seq(viewer) == s, timeout=5, message=case)  # type: ignore[misc]
    assert viewer.running
    assert viewer.metric("framebus_task_restarts_total") in (None, 0.0)
    assert "Traceback" not in viewer.log_text()
    client.close()


# --- invalid settings -------------------------------------------------------------------------

BAD_SETTINGS = [
    ("capture", "TRANSPORT", "carrier-pigeon"),
    ("viewer", "TRANSPORT", "kafka"),
    ("capture", "REDIS_URL", "http://127.0.0.1:6379/0"),
    ("viewer", "REDIS_URL", "localhost:6379"),
    ("capture", "GATEWAY_URL", "ftp://gateway"),
    ("viewer", "GATEWAY_URL", "gateway:8080"),
    ("gateway", "GATEWAY_PORT", "70000"),
    ("viewer", "VIEWER_PORT", "0"),
    ("capture", "CAPTURE_PORT", "http"),
    ("capture", "JPEG_QUALITY", "0"),
    ("capture", "JPEG_QUALITY", "101"),
    ("viewer", "VIEWER_JPEG_QUALITY", "101"),
    ("capture", "CAMERA_ID", "cam 0"),
    ("viewer", "CAMERA_ID", "<script>"),
    ("viewer", "VIEWER_CAMERAS", "cam0,../etc"),
    ("gateway", "FRAME_STALE_SECONDS", "0"),
    ("gateway", "GATEWAY_MAX_FRAME_BYTES", "lots"),
    ("gateway", "GATEWAY_BACKPLANE", "kafka"),
    ("gateway", "CAMERA_IDLE_SECONDS", "0"),
    ("viewer", "VIEWER_RENDER_BUDGET_SECONDS", "-1"),
    ("capture", "CAPTURE_IDLE_FPS", "0"),
]


@pytest.mark.parametrize(("service", "variable", "value"), BAD_SETTINGS)
def test_invalid_setting_stops_the_service_with_one_line_naming_the_variable(
    service: str, variable: str, value: str
) -> None:
    result = run_until_exit(service, {variable: value})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stderr


def test_invalid_url_setting_does_not_print_the_password_it_contains(tmp_path: Path) -> None:
    result = run_until_exit("viewer", {"REDIS_URL": "http://:s3cret-pw@127.0.0.1:6379/0"})
    assert result.returncode != 0
    assert "REDIS_URL" in result.stderr
    assert "s3cret-pw" not in result.stderr
