"""The whole pipeline with real processes: capture -> Redis / gateway -> viewer at 600x600."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
import redis

from shared.wire import from_stream_fields, stream_key
from shared.wire_ws import from_ws_message
from tests.fixtures import wait_until
from tests.fixtures.processes import ServiceProcess
from tests.fixtures.servers import RedisServer, RtspServer
from tests.support.observe import decode, live_snapshot, scrape
from tests.support.streams import newest_entries

Start = Callable[..., ServiceProcess]


def read_mjpeg_parts(url: str, count: int) -> list[bytes]:
    """Reads ``count`` parts of a multipart/x-mixed-replace stream, by their Content-Length."""

    async def read() -> list[bytes]:
        parts: list[bytes] = []
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace; boundary=")
            boundary = response.headers["Content-Type"].split("boundary=")[1].encode()
            assert await response.content.readline() == b"--" + boundary + b"\r\n"
            while len(parts) < count:
                headers = {}
                while (line := await response.content.readline()) != b"\r\n":
                    name, _, value = line.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                assert headers["content-type"] == "image/jpeg"
                jpeg = await response.content.readexactly(int(headers["content-length"]))
                # The boundary must follow the JPEG at once, or browsers paint one frame late.
                assert await response.content.readline() == b"\r\n"
                assert await response.content.readline() == b"--" + boundary + b"\r\n"
                parts.append(jpeg)
        return parts

    return asyncio.run(asyncio.wait_for(read(), 20))


def assert_viewer_shows_moving_video(viewer: ServiceProcess) -> None:
    first_seq, first = live_snapshot(viewer)
    assert decode(first).shape == (600, 600, 3)
    wait_until(lambda: live_snapshot(viewer)[0] >= first_seq + 10, timeout=10, message="frames stopped")
    _, later = live_snapshot(viewer)
    assert later != first, "the picture did not change"
    parts = read_mjpeg_parts(f"{viewer.url}/stream.mjpg", 5)
    assert all(decode(part).shape == (600, 600, 3) for part in parts)
    assert (viewer.metric("framebus_end_to_end_latency_seconds_count", {"camera": "cam0"}) or 0) > 0
    viewer.wait_ready()


def test_frames_flow_end_to_end_over_redis(redis_server: RedisServer, start_service: Start) -> None:
    common = {"REDIS_URL": redis_server.url, "TRANSPORT": "redis"}
    capture = start_service("capture", common)
    viewer = start_service("viewer", common)
    assert_viewer_shows_moving_video(viewer)
    capture.wait_ready()
    client = redis.Redis.from_url(redis_server.url)
    assert client.zrange("framebus:registry", 0, -1) == [b"cam0"]
    ((_, fields),) = newest_entries(client, stream_key("cam0"), count=1)
    meta, jpeg = from_stream_fields(fields)
    assert (meta.camera, meta.width, meta.height) == ("cam0", 1280, 720)
    assert decode(jpeg).shape == (720, 1280, 3)
    client.close()


def test_redis_stream_stays_capped(redis_server: RedisServer, start_service: Start) -> None:
    start_service("capture", {"REDIS_URL": redis_server.url, "REDIS_STREAM_MAXLEN": "3"}).wait_ready()
    client = redis.Redis.from_url(redis_server.url)
    published = lambda: client.xinfo_stream(stream_key("cam0"))["entries-added"]  # noqa: E731
    wait_until(lambda: published() > 20, timeout=10)
    assert client.xlen(stream_key("cam0")) <= 3
    client.close()


def test_frames_flow_end_to_end_over_http(start_service: Start) -> None:
    gateway = start_service("gateway", {"GATEWAY_TOKEN": "t0ken"})
    common = {"GATEWAY_URL": gateway.url, "TRANSPORT": "http"}
    capture = start_service("capture", {**common, "GATEWAY_TOKEN": "t0ken"})
    viewer = start_service("viewer", common)
    assert_viewer_shows_moving_video(viewer)
    capture.wait_ready()
    status, latest = gateway.get("/cameras/cam0/latest.jpg")
    assert status == 200 and decode(latest).shape == (720, 1280, 3)

    async def two_ws_frames() -> list[tuple[int, bytes]]:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"{gateway.url}/cameras/cam0/ws") as ws,
        ):
            frames = []
            for _ in range(2):
                message = await ws.receive_bytes(timeout=5)
                meta, jpeg = from_ws_message(message)
                frames.append((meta.seq, jpeg))
            return frames

    (seq1, jpeg1), (seq2, _) = asyncio.run(two_ws_frames())
    assert seq2 > seq1
    assert decode(jpeg1).shape == (720, 1280, 3)


def test_capture_encodes_once_for_both_transports(redis_server: RedisServer, start_service: Start) -> None:
    gateway = start_service("gateway")
    capture = start_service(
        "capture", {"REDIS_URL": redis_server.url, "GATEWAY_URL": gateway.url, "TRANSPORT": "both"}
    )
    capture.wait_ready()
    wait_until(
        lambda: (capture.metric("framebus_frames_published_total", {"transport": "http"}) or 0) >= 30,
        timeout=10,
    )
    samples = scrape(capture)  # one scrape, so the three counters are consistent
    encoded = samples[("framebus_stage_seconds_count", (("stage", "encode"),))]
    redis_sent = samples[("framebus_frames_published_total", (("camera", "cam0"), ("transport", "redis")))]
    http_sent = samples[("framebus_frames_published_total", (("camera", "cam0"), ("transport", "http")))]
    assert encoded is not None and redis_sent is not None and http_sent is not None
    # One encode per frame, each frame sent over both: sends ~= 2 x encodes, never more.
    assert redis_sent + http_sent <= 2 * encoded
    assert redis_sent + http_sent >= 2 * encoded - 4


def test_capture_reads_an_rtsp_camera(
    redis_server: RedisServer, rtsp_server: Callable[..., RtspServer], start_service: Start
) -> None:
    camera = rtsp_server(width=640, height=480, fps=30)
    common = {"REDIS_URL": redis_server.url}
    capture = start_service("capture", {**common, "CAPTURE_SOURCE": camera.url})
    viewer = start_service("viewer", common)
    capture.wait_ready(timeout=20)
    _, jpeg = live_snapshot(viewer)
    assert decode(jpeg).shape == (600, 600, 3)
    client = redis.Redis.from_url(redis_server.url)
    ((_, fields),) = newest_entries(client, stream_key("cam0"), count=1)
    assert from_stream_fields(fields)[0].width == 640
    client.close()
    assert "source opened: url 640x480" in capture.log_text()


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1 s, 15-frame H.264 clip made with ffmpeg."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15", "-t", "1",
         "-pix_fmt", "yuv420p", "-c:v", "libx264", str(path)],
        check=True,
    )  # fmt: skip
    return path


def test_video_file_source_loops(redis_server: RedisServer, start_service: Start, short_clip: Path) -> None:
    capture = start_service("capture", {"REDIS_URL": redis_server.url, "CAPTURE_SOURCE": str(short_clip)})
    # 15 frames in the file; looping keeps it going well past that, at the file's own rate.
    wait_until(lambda: (capture.metric("framebus_frames_captured_total") or 0) > 40, timeout=10)
    assert "source lost" not in capture.log_text()
    capture.wait_ready()


def test_services_stop_within_two_seconds_on_sigterm_while_streaming(
    redis_server: RedisServer, start_service: Start
) -> None:
    gateway = start_service("gateway")
    common = {"REDIS_URL": redis_server.url, "GATEWAY_URL": gateway.url}
    capture = start_service("capture", {**common, "TRANSPORT": "both"})
    viewer = start_service("viewer", {**common, "TRANSPORT": "http"})
    viewer.wait_ready()
    with subprocess.Popen(["curl", "-sN", "-o", "/dev/null", f"{viewer.url}/stream.mjpg"]) as browser:
        wait_until(lambda: viewer.metric("framebus_mjpeg_clients", {"camera": "cam0"}) == 1, timeout=5)
        for service in (viewer, capture, gateway):
            code, seconds = service.terminate()
            assert code == 0, service.log_tail()
            assert seconds < 2.0, f"{service.name} took {seconds:.2f}s"
            assert "Traceback" not in service.log_text()
        assert browser.wait(timeout=5) is not None
