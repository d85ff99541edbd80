"""The client library against real services: a real redis-server and a real gateway process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import cv2
import numpy as np
import pytest
import redis

import framebus
from framebus.publish import jpeg_size
from shared.registry import REGISTRY_KEY
from shared.wire import from_stream_fields, stream_key
from tests.fixtures import free_port
from tests.fixtures.processes import REPO_ROOT, ServiceProcess
from tests.fixtures.servers import RedisServer

Start = Callable[..., ServiceProcess]


def numbered_image(seq: int, width: int = 320, height: int = 240) -> np.ndarray:
    """A frame whose content says its seq (noise would make the JPEGs slow to encode)."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, :, 1] = (seq * 37) % 256
    cv2.putText(image, str(seq), (10, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
    return image


def publish_each(publisher: framebus.Publisher, seqs: range) -> None:
    """Publishes one frame at a time, waiting for each: nothing is superseded in the publisher."""
    for seq in seqs:
        assert publisher.publish(numbered_image(seq)) == seq
        publisher.flush()
    assert publisher.stats.dropped_total == 0, publisher.stats


@pytest.fixture
def gateway(start_service: Start) -> ServiceProcess:
    return start_service("gateway", {"GATEWAY_TOKEN": "secret"})


@pytest.fixture
def gateway_publisher(gateway: ServiceProcess) -> Iterator[framebus.Publisher]:
    with framebus.Publisher("cam0", gateway.url, token="secret") as publisher:
        yield publisher


@pytest.fixture
def redis_publisher(redis_url: str) -> Iterator[framebus.Publisher]:
    with framebus.Publisher("cam0", redis_url) as publisher:
        yield publisher


# --- publishing ---------------------------------------------------------------------------------


def test_publish_over_redis_writes_valid_entries_and_registers_the_camera(redis_url: str) -> None:
    with framebus.Publisher("cam0", redis_url, maxlen=4) as publisher:
        publish_each(publisher, range(1, 11))
    raw = redis.Redis.from_url(redis_url)
    assert raw.zrange(REGISTRY_KEY, 0, -1) == [b"cam0"]
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], raw.xrange(stream_key("cam0")))
    assert len(entries) == 4, "MAXLEN is exact"
    metas = [from_stream_fields(fields)[0] for _, fields in entries]
    assert [meta.seq for meta in metas] == [7, 8, 9, 10]
    assert (metas[0].width, metas[0].height) == (320, 240)
    raw.close()


def test_one_shot_publish_over_the_gateway_is_served_as_latest_jpeg(gateway: ServiceProcess) -> None:
    jpeg = cv2.imencode(".jpg", numbered_image(3, 64, 48))[1].tobytes()
    seq = framebus.publish("cam7", jpeg, gateway.url, token="secret", seq=42)
    assert seq == 42
    status, body = gateway.get("/cameras/cam7/latest.jpg")
    assert status == 200 and body == jpeg
    assert jpeg_size(body) == (64, 48)


def test_one_shot_publish_with_a_wrong_token_raises_auth_refused(gateway: ServiceProcess) -> None:
    with pytest.raises(framebus.AuthRefused, match="401"):
        framebus.publish("cam0", numbered_image(1), gateway.url, token="wrong")


def test_publisher_counts_every_frame_it_could_not_send(tmp_path: Path) -> None:
    # Nothing listens on this port: each frame is dropped and counted, nothing raises or hangs.
    started = time.monotonic()
    with framebus.Publisher("cam0", f"http://127.0.0.1:{free_port()}", timeout=0.5) as publisher:
        for seq in range(1, 21):
            publisher.publish(numbered_image(seq))
        publisher.flush()
        stats = publisher.stats
    assert stats.published == 0
    assert stats.dropped_total == 20
    assert stats.dropped.get("transport_error", 0) >= 1
    assert set(stats.dropped) <= {"transport_error", "transport_down", "superseded"}
    assert time.monotonic() - started < 10


def test_publisher_supersedes_rather_than_queues(redis_url: str) -> None:
    jpeg = cv2.imencode(".jpg", numbered_image(1))[1].tobytes()
    with framebus.Publisher("cam0", redis_url) as publisher:
        for _ in range(200):
            publisher.publish(jpeg)
        publisher.flush()
        stats = publisher.stats
    # Every frame is accounted for; most are superseded (not queued) while one is being sent.
    # (On a loaded machine a send can also time out: then it counts as transport_error.)
    assert stats.published + sum(stats.dropped.values()) == 200
    assert stats.published >= 1 and stats.dropped.get("superseded", 0) > 0
    assert not [t for t in threading.enumerate() if t.name.startswith("framebus-")], "thread leaked"


# --- subscribing over Redis ---------------------------------------------------------------------


def test_subscribe_over_redis_hands_over_the_newest_frame_and_counts_skips(
    redis_url: str, redis_publisher: framebus.Publisher
) -> None:
    publish_each(redis_publisher, range(1, 6))
    subscription = framebus.subscribe("cam0", redis_url, timeout=5)
    frames = iter(subscription)
    first = next(frames)
    assert (first.camera, first.seq, first.skipped) == ("cam0", 5, 0)
    publish_each(redis_publisher, range(6, 9))
    newest = next(frames)
    assert (newest.seq, newest.skipped) == (8, 2)
    image = newest.image()
    assert image.shape == (240, 320, 3)
    assert newest.image(scale=2, grey=True).shape == (120, 160)
    assert newest.lag_seconds >= 0
    subscription.close()


def test_subscribe_in_order_over_redis_gives_every_frame_and_counts_gaps(
    redis_url: str, redis_publisher: framebus.Publisher
) -> None:
    publish_each(redis_publisher, range(1, 3))
    subscription = framebus.subscribe("cam0", redis_url, newest=False, timeout=5)
    frames = iter(subscription)
    assert next(frames).seq == 2
    publish_each(redis_publisher, range(3, 6))
    assert [(f.seq, f.skipped) for f in (next(frames), next(frames), next(frames))] == [
        (3, 0),
        (4, 0),
        (5, 0),
    ]
    # Twelve more than the stream's MAXLEN (8) keeps: 6..9 are trimmed before we read them.
    publish_each(redis_publisher, range(6, 18))
    frame = next(frames)
    assert (frame.seq, frame.skipped) == (10, 4)
    assert [next(frames).seq for _ in range(7)] == list(range(11, 18))
    assert subscription.stats.frames == 12 and subscription.stats.skipped == 4
    subscription.close()


async def test_async_subscription_over_redis(redis_url: str) -> None:
    async with (
        framebus.AsyncPublisher("cam0", redis_url) as publisher,
        framebus.subscribe("cam0", redis_url, timeout=5) as frames,
    ):
        await publisher.publish(numbered_image(1))
        first = await anext(frames)
        await publisher.publish(numbered_image(2))
        second = await anext(frames)
    assert (first.seq, second.seq) == (1, 2)


def test_leaving_the_loop_closes_the_subscription_connections(
    redis_url: str, redis_publisher: framebus.Publisher
) -> None:
    publish_each(redis_publisher, range(1, 3))
    raw = redis.Redis.from_url(redis_url)
    baseline = len(raw.client_list())
    for frame in framebus.subscribe("cam0", redis_url, timeout=5):
        assert len(raw.client_list()) > baseline
        assert frame.seq == 2
        break
    assert len(raw.client_list()) == baseline
    with framebus.subscribe("cam0", redis_url, timeout=5) as subscription:
        held = iter(subscription)
        assert next(held).seq == 2
        assert len(raw.client_list()) > baseline
    assert len(raw.client_list()) == baseline, "leaving `with` closes even a referenced iterator"
    raw.close()


def test_a_missing_camera_raises_camera_not_found_after_the_timeout(
    redis_url: str, redis_publisher: framebus.Publisher
) -> None:
    publish_each(redis_publisher, range(1, 2))
    started = time.monotonic()
    with pytest.raises(framebus.CameraNotFound, match=r"camera camX .*unknown camera \(known: cam0\)"):
        next(iter(framebus.subscribe("camX", redis_url, timeout=1.0)))
    assert 1.0 <= time.monotonic() - started < 5


def test_a_silent_known_camera_raises_no_frames(redis_url: str, redis_publisher: framebus.Publisher) -> None:
    publish_each(redis_publisher, range(1, 2))
    subscription = framebus.subscribe("cam0", redis_url, timeout=1.0)
    frames = iter(subscription)
    assert next(frames).seq == 1
    with pytest.raises(framebus.NoFrames, match="known but sent nothing") as raised:
        next(frames)
    assert not isinstance(raised.value, framebus.CameraNotFound)


def test_a_wrong_redis_password_raises_auth_refused(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", password="right").start()
    wrong = server.url.replace(":right@", ":wrong@")
    try:
        with pytest.raises(framebus.AuthRefused, match="Redis refused"):
            next(iter(framebus.subscribe("cam0", wrong, timeout=3)))
    finally:
        server.kill()


def test_an_unreachable_redis_is_retried_until_the_timeout(tmp_path: Path) -> None:
    subscription = framebus.subscribe("cam0", f"redis://127.0.0.1:{free_port()}/0", timeout=1.5)
    with pytest.raises(framebus.NoFrames, match="upstream unreachable"):
        next(iter(subscription))
    assert subscription.stats.reconnects >= 2


def test_subscription_survives_a_redis_restart(
    redis_server: RedisServer, redis_publisher: framebus.Publisher
) -> None:
    publish_each(redis_publisher, range(1, 2))
    subscription = framebus.subscribe("cam0", redis_server.url, timeout=15)
    frames = iter(subscription)
    assert next(frames).seq == 1
    redis_server.kill()
    redis_server.start()

    def keep_publishing() -> None:
        for seq in range(2, 200):
            redis_publisher.publish(numbered_image(seq))
            time.sleep(0.05)
            if stop.is_set():
                return

    stop = threading.Event()
    producer = threading.Thread(target=keep_publishing)
    producer.start()
    try:
        assert next(frames).seq > 1
    finally:
        stop.set()
        producer.join()
        subscription.close()


# --- worker pools -------------------------------------------------------------------------------


async def test_a_two_worker_pool_splits_frames_with_none_handled_twice(redis_url: str) -> None:
    handled: dict[str, list[int]] = {"a": [], "b": []}
    total = 60

    async def worker(name: str) -> None:
        async with framebus.subscribe("cam0", redis_url, group="detector", timeout=3) as frames:
            try:
                async for frame in frames:
                    handled[name].append(frame.seq)
                    await asyncio.sleep(0.03)  # the "algorithm": slower than the camera
                    if frame.seq == total:
                        return
            except framebus.NoFrames:
                return  # the other worker took the last frame

    workers = [asyncio.create_task(worker(name)) for name in handled]
    await asyncio.sleep(0.5)  # both consumers have joined the group
    async with framebus.AsyncPublisher("cam0", redis_url) as publisher:
        for seq in range(1, total + 1):
            await publisher.publish(numbered_image(seq))
            await publisher.flush()
            await asyncio.sleep(0.01)
    await asyncio.wait_for(asyncio.gather(*workers), timeout=15)
    a, b = set(handled["a"]), set(handled["b"])
    assert a and b, handled
    assert not a & b, f"frames handled twice: {sorted(a & b)}"
    assert len(handled["a"]) == len(a) and len(handled["b"]) == len(b)
    assert a | b <= set(range(1, total + 1))
    assert total in a | b, "the pool reaches the newest frame"


def test_two_worker_processes_share_a_live_camera_without_handling_a_frame_twice(
    redis_server: RedisServer, start_service: Start
) -> None:
    start_service("capture", {"REDIS_URL": redis_server.url, "CAPTURE_FPS": "20"})
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "examples/algorithm/motion_boxes.py", "--url", redis_server.url]
    workers = [
        subprocess.Popen(
            [*command, "--group", "motion", "--frames", "15"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=60) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), outputs
    handled = [[int(line.split()[0]) for line in out.splitlines()] for out, _ in outputs]
    assert all(len(seqs) == 15 for seqs in handled)
    assert not set(handled[0]) & set(handled[1]), f"frames handled twice: {handled}"


def test_a_pool_needs_redis() -> None:
    with pytest.raises(ValueError, match="Redis"):
        framebus.subscribe("cam0", "http://127.0.0.1:1", group="pool")


# --- subscribing over the gateway ---------------------------------------------------------------


def test_subscribe_over_the_gateway_hands_over_the_newest_frame(
    gateway: ServiceProcess, gateway_publisher: framebus.Publisher
) -> None:
    publish_each(gateway_publisher, range(1, 3))
    subscription = framebus.subscribe("cam0", gateway.url, timeout=5)
    frames = iter(subscription)
    assert next(frames).seq == 2
    publish_each(gateway_publisher, range(3, 6))
    newest = next(frames)
    assert (newest.seq, newest.skipped) == (5, 2)
    assert newest.image().shape == (240, 320, 3)
    subscription.close()


def test_subscribe_in_order_over_the_gateway_gives_every_frame(
    gateway: ServiceProcess, gateway_publisher: framebus.Publisher
) -> None:
    publish_each(gateway_publisher, range(1, 2))
    subscription = framebus.subscribe("cam0", gateway.url, newest=False, timeout=5)
    frames = iter(subscription)
    assert next(frames).seq == 1
    publish_each(gateway_publisher, range(2, 6))
    assert [(f.seq, f.skipped) for f in (next(frames) for _ in range(4))] == [(2, 0), (3, 0), (4, 0), (5, 0)]
    subscription.close()


def test_subscription_over_the_gateway_survives_a_gateway_restart(start_service: Start) -> None:
    gateway = start_service("gateway", {"GATEWAY_TOKEN": "secret"})
    port = gateway.port
    with framebus.Publisher("cam0", gateway.url, token="secret") as publisher:
        publish_each(publisher, range(1, 2))
    subscription = framebus.subscribe("cam0", gateway.url, timeout=20)
    frames = iter(subscription)
    assert next(frames).seq == 1
    gateway.terminate()
    gateway = start_service("gateway", {"GATEWAY_TOKEN": "secret"}, port=port)
    with framebus.Publisher("cam0", gateway.url, token="secret", first_seq=2) as publisher:
        publish_each(publisher, range(2, 3))
        assert next(frames).seq == 2
    subscription.close()
    assert subscription.stats.reconnects >= 1


def test_a_missing_camera_on_the_gateway_raises_camera_not_found(
    gateway: ServiceProcess, gateway_publisher: framebus.Publisher
) -> None:
    publish_each(gateway_publisher, range(1, 2))
    with pytest.raises(framebus.CameraNotFound, match="camX"):
        next(iter(framebus.subscribe("camX", gateway.url, timeout=1.0)))


# --- the README's example -----------------------------------------------------------------------


def readme_example() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## For algorithm authors", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_example_runs_as_written(redis_server: RedisServer, start_service: Start) -> None:
    example = readme_example()
    assert len(example.strip().splitlines()) <= 10
    start_service("capture", {"REDIS_URL": redis_server.url, "CAPTURE_FPS": "10"})
    env = {**os.environ, "REDIS_URL": redis_server.url, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("FRAMEBUS_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", example], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
    finally:
        proc.kill()
        proc.communicate()
    seqs = [int(line.split()[0]) for line in lines]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3, lines
    newest = framebus.latest_results("cam0", redis_server.url)
    assert newest is not None and newest.boxes[0].label == "thing"
