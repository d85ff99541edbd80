"""Every recipe in docs/protocol.md, run exactly as written against a running system.

The shell blocks after ``<!-- recipe: NAME -->`` are extracted from the markdown and run with
``bash -euo pipefail``; only REDIS_URL, GATEWAY_URL, VIEWER_URL and GATEWAY_TOKEN are set.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import redis

from shared.wire import from_stream_fields, stream_key
from tests.fixtures import wait_until
from tests.fixtures.processes import REPO_ROOT, ServiceProcess
from tests.fixtures.servers import RedisServer
from tests.support.streams import newest_entries

DOC = REPO_ROOT / "docs" / "protocol.md"
RECIPE = re.compile(r"<!-- recipe: ([a-z0-9-]+) -->\s*```sh\n(.*?)```", re.DOTALL)
TOKEN = "recipe-token"
TOOLS = ("bash", "redis-cli", "curl", "ffmpeg", "node")

Start = Callable[..., ServiceProcess]


def recipes() -> dict[str, str]:
    return dict(RECIPE.findall(DOC.read_text()))


def decode(jpeg: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a decodable JPEG"
    return image


class Shell:
    """Runs doc recipes in a scratch directory that sees the repository's examples/."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        (workdir / "examples").symlink_to(REPO_ROOT / "examples")

    def run(self, name: str, extra_env: dict[str, str] | None = None, check: bool = True) -> str:
        script = recipes()[name]
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=self.workdir,
            env={**self.env, **(extra_env or {})},
            capture_output=True,
            timeout=60,
        )
        if check:
            assert result.returncode == 0, (
                f"recipe {name} exited {result.returncode}\n--- script ---\n{script}"
                f"--- stdout ---\n{result.stdout.decode(errors='replace')}"
                f"--- stderr ---\n{result.stderr.decode(errors='replace')}"
            )
        elif result.returncode == 0:
            raise AssertionError(f"recipe {name} should have failed:\n{result.stdout.decode()}")
        return result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace")

    def file(self, name: str) -> bytes:
        return (self.workdir / name).read_bytes()


@pytest.fixture(scope="module", autouse=True)
def _tools_present() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run `scripts/setup.sh test` as root", pytrace=False)
    # Debian 12's own nodejs is 18, which has no WebSocket; 20.10+ has it behind this flag.
    probe = [
        "node",
        "--experimental-websocket",
        "-e",
        "process.exit(typeof WebSocket === 'function' ? 0 : 1)",
    ]
    if subprocess.run(probe, capture_output=True, timeout=30).returncode != 0:
        pytest.fail("the Node.js recipe needs Node >= 20.10 (global WebSocket); install it", pytrace=False)


@pytest.fixture
def system(start_service: Start, redis_server: RedisServer) -> dict[str, ServiceProcess]:
    """gateway (with a token) + capture publishing to both transports + viewer on Redis."""
    gateway = start_service("gateway", {"GATEWAY_TOKEN": TOKEN})
    capture = start_service(
        "capture",
        {
            "TRANSPORT": "both",
            "REDIS_URL": redis_server.url,
            "GATEWAY_URL": gateway.url,
            "GATEWAY_TOKEN": TOKEN,
            "CAPTURE_FPS": "10",
            "CAPTURE_WIDTH": "640",
            "CAPTURE_HEIGHT": "360",
            # 10 s of history, so a frame a consumer reported can still be looked up by seq.
            "REDIS_STREAM_MAXLEN": "100",
        },
    )
    viewer = start_service("viewer", {"REDIS_URL": redis_server.url})
    capture.wait_ready()
    viewer.wait_ready()
    return {"gateway": gateway, "capture": capture, "viewer": viewer}


@pytest.fixture
def shell(system: dict[str, ServiceProcess], redis_server: RedisServer, tmp_path: Path) -> Shell:
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "HOME": str(tmp_path),
        "REDIS_URL": redis_server.url,
        "GATEWAY_URL": system["gateway"].url,
        "VIEWER_URL": system["viewer"].url,
        "GATEWAY_TOKEN": TOKEN,
    }
    workdir = tmp_path / "work"
    workdir.mkdir()
    return Shell(workdir, env)


@pytest.fixture
def stream(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


def entry_with_seq(client: redis.Redis, camera: str, seq: int) -> bytes:
    for _, fields in newest_entries(client, stream_key(camera)):
        meta, jpeg = from_stream_fields(fields)
        if meta.seq == seq:
            return jpeg
    raise AssertionError(f"seq {seq} of {camera} no longer in the stream")


def test_every_recipe_in_the_protocol_doc_is_tested() -> None:
    tested = {
        "redis-cameras", "redis-newest-jpeg", "redis-newest-meta", "redis-cli-producer",
        "ffmpeg-curl-producer", "curl-post-jpeg", "curl-latest", "node-ws-consumer",
        "ffmpeg-viewer-mjpeg", "python-motion-score", "redis-demand",
    }  # fmt: skip
    assert set(recipes()) == tested


def test_redis_cli_fetches_the_newest_jpeg_byte_for_byte(
    system: dict[str, ServiceProcess], shell: Shell, stream: redis.Redis
) -> None:
    assert "cam0" in shell.run("redis-cameras").split()
    # Stop the producer so "newest" holds still while three readers compare it.
    assert system["capture"].terminate()[0] == 0

    shell.run("redis-newest-jpeg")
    fetched = shell.file("newest.jpg")
    (_, fields), *_ = newest_entries(stream, stream_key("cam0"), count=1)
    meta, jpeg = from_stream_fields(fields)
    assert fetched == jpeg
    assert decode(fetched).shape == (360, 640, 3)

    lines = shell.run("redis-newest-meta").split()
    described = dict(zip(lines[1::2], lines[2::2], strict=True))
    assert described == {
        "camera": "cam0",
        "seq": str(meta.seq),
        "captured_ns": str(meta.captured_ns),
        "sent_ns": str(meta.sent_ns),
        "width": "640",
        "height": "360",
    }
    # The gateway got the very same bytes over HTTP.
    gateway = system["gateway"]
    status, body = gateway.get("/cameras/cam0/latest.jpg")
    assert status == 200
    _, listing = gateway.get_json("/cameras")
    assert body == entry_with_seq(stream, "cam0", listing["cameras"][0]["seq"])


def test_redis_cli_producer_frames_reach_the_viewer(
    system: dict[str, ServiceProcess], shell: Shell, stream: redis.Redis
) -> None:
    shell.run("redis-cli-producer")
    (_, fields), *_ = newest_entries(stream, stream_key("cam5"), count=1)
    meta, jpeg = from_stream_fields(fields)
    assert jpeg == shell.file("frame.jpg")
    assert (meta.camera, meta.seq, meta.width, meta.height) == ("cam5", 1, 640, 480)

    viewer = system["viewer"]
    wait_until(
        lambda: viewer.get_json("/api/stats?camera=cam5")[1]["seq"] == 1,
        timeout=15,
        message=lambda: f"the viewer never showed cam5:\n{viewer.log_tail()}",
    )


def test_curl_posts_a_jpeg_with_the_token_and_fetches_it_back(shell: Shell) -> None:
    shell.run("curl-post-jpeg")
    headers = shell.run("curl-latest")
    assert shell.file("latest.jpg") == shell.file("frame.jpg")
    assert "X-Frame-Seq: 1" in headers
    assert "X-Frame-Width: 640" in headers

    refused = shell.run("curl-post-jpeg", {"GATEWAY_TOKEN": "wrong"}, check=False)
    assert "bearer token" in refused


def test_ffmpeg_and_curl_producer_streams_to_the_gateway(
    system: dict[str, ServiceProcess], shell: Shell
) -> None:
    shell.run("ffmpeg-curl-producer", {"FRAMES": "15"})
    gateway = system["gateway"]
    assert gateway.metric("framebus_frames_received_total", {"camera": "testsrc"}) == 15
    status, body = gateway.get("/cameras/testsrc/latest.jpg")
    assert status == 200
    assert decode(body).shape == (480, 640, 3)


def test_ffmpeg_reads_600x600_frames_from_the_viewer_mjpeg_stream(shell: Shell) -> None:
    shell.run("ffmpeg-viewer-mjpeg")
    frames = [shell.file(f"viewer{n:02d}.jpg") for n in range(1, 11)]
    assert all(decode(frame).shape == (600, 600, 3) for frame in frames)
    assert len(set(frames)) > 1, "ten identical frames: the stream did not move"


def test_node_consumer_writes_the_newest_jpeg_from_the_gateway_websocket(
    shell: Shell, stream: redis.Redis
) -> None:
    output = shell.run("node-ws-consumer")
    headers = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert len(headers) == 3
    assert all(h["camera"] == "cam0" and (h["width"], h["height"]) == (640, 360) for h in headers)
    seqs = [h["seq"] for h in headers]
    assert seqs == sorted(set(seqs))
    newest = shell.file("newest-ws.jpg")
    assert len(newest) == headers[-1]["bytes"]
    # Capture published the same frame to Redis too: the bytes must match exactly.
    assert newest == entry_with_seq(stream, "cam0", seqs[-1])
    assert int(headers[-1]["captured_ns"]) <= int(headers[-1]["sent_ns"])


def test_motion_score_example_prints_a_score_per_new_frame(shell: Shell) -> None:
    lines = shell.run("python-motion-score").split("\n")
    scores = [line.split() for line in lines if line.strip()]
    assert len(scores) == 5
    seqs = [int(seq) for seq, _ in scores]
    assert seqs == sorted(set(seqs))
    assert all(0.0 <= float(score) <= 255.0 for _, score in scores)


def test_the_demand_recipe_sets_a_short_lived_marker_and_wakes_subscribers(
    shell: Shell, stream: redis.Redis
) -> None:
    listener = stream.pubsub(ignore_subscribe_messages=True)
    listener.subscribe("framebus:demand")
    shell.run("redis-demand")
    assert stream.get("framebus:demand:cam0") == b"1"
    assert 0 < stream.pttl("framebus:demand:cam0") <= 3000  # it expires unless refreshed
    message = wait_until(lambda: listener.get_message(timeout=0.1), timeout=5)
    assert message["data"] == b"cam0"
    listener.close()
