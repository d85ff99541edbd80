"""The Java examples (JDK only, `java X.java`) against a real gateway and the Python library."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

import framebus
from tests.fixtures.processes import REPO_ROOT, ServiceProcess

Start = Callable[..., ServiceProcess]
JAVA_DIR = REPO_ROOT / "examples" / "java"
TOKEN = "java-secret"
FRAME_LINE = re.compile(
    r"frame camera=(?P<camera>\S+) seq=(?P<seq>\d+) captured_ns=(?P<captured>\d+) "
    r"width=(?P<width>\d+) height=(?P<height>\d+) bytes=(?P<bytes>\d+) latency_ms=\S+"
)


@pytest.fixture(scope="module")
def java() -> str:
    path = shutil.which("java")
    if path is None:
        pytest.fail("java not found: run `scripts/setup.sh` as root (installs openjdk-17-jdk-headless)")
    return path


@pytest.fixture
def gateway(start_service: Start) -> ServiceProcess:
    return start_service("gateway", {"GATEWAY_TOKEN": TOKEN})


def java_env() -> dict[str, str]:
    return {**os.environ, "FRAMEBUS_TOKEN": TOKEN}


@pytest.fixture
def run_java(java: str) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def run(source: str, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [java, source, *args],
            cwd=JAVA_DIR,
            env=java_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        return proc

    yield run
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_java_producer_feeds_a_python_consumer_through_the_gateway(
    gateway: ServiceProcess, run_java: Callable[..., subprocess.Popen[str]]
) -> None:
    producer = run_java("Producer.java", gateway.url, "javacam", "--fps", "20", "--frames", "400")
    seqs: list[int] = []
    # The JDK compiles the source first: allow it time before the first frame.
    with framebus.subscribe("javacam", gateway.url, newest=False, timeout=30) as subscription:
        for frame in subscription:
            assert (frame.camera, frame.width, frame.height) == ("javacam", 320, 240)
            # Java's epoch nanoseconds agree with ours (same machine): a few seconds at most.
            assert abs(time.time_ns() - frame.captured_ns) < 5e9
            image = frame.image()
            assert image.shape == (240, 320, 3)
            seqs.append(frame.seq)
            if len(seqs) == 10:
                break
    assert seqs == sorted(seqs) and len(set(seqs)) == 10
    producer.kill()


def test_java_producer_with_a_wrong_token_is_refused(gateway: ServiceProcess, java: str) -> None:
    result = subprocess.run(
        [java, "Producer.java", gateway.url, "javacam", "--frames", "3"],
        cwd=JAVA_DIR,
        env={**java_env(), "FRAMEBUS_TOKEN": "wrong"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3
    assert "HTTP 401" in result.stderr


def test_java_producer_sends_jpeg_files_as_they_are(
    gateway: ServiceProcess, run_java: Callable[..., subprocess.Popen[str]], tmp_path: Path
) -> None:
    image = np.full((90, 160, 3), 200, np.uint8)
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    (tmp_path / "a.jpg").write_bytes(jpeg)
    producer = run_java("Producer.java", gateway.url, "files", "--frames", "2", str(tmp_path))
    out, err = producer.communicate(timeout=60)
    assert producer.returncode == 0, err
    assert "sent=2 dropped=0" in out
    status, body = gateway.get("/cameras/files/latest.jpg")
    assert status == 200 and body == jpeg


def test_python_producer_feeds_the_java_consumer(
    gateway: ServiceProcess, run_java: Callable[..., subprocess.Popen[str]], tmp_path: Path
) -> None:
    consumer = run_java("Consumer.java", gateway.url, "pycam", "--frames", "5", "--out", str(tmp_path))
    stop = threading.Event()
    published: list[int] = []

    def produce() -> None:
        with framebus.Publisher("pycam", gateway.url, token=TOKEN) as publisher:
            seq = 0
            while not stop.is_set() and seq < 600:
                seq += 1
                image = np.zeros((180, 240, 3), np.uint8)
                image[:, : (seq * 4) % 240] = (0, 128, 255)
                published.append(publisher.publish(image))
                time.sleep(0.05)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        out, err = consumer.communicate(timeout=60)
    finally:
        stop.set()
        producer.join()
    assert consumer.returncode == 0, err
    frames = [FRAME_LINE.fullmatch(line) for line in out.splitlines()]
    assert len(frames) == 5 and all(frames), out
    seqs = [int(m["seq"]) for m in frames if m]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert set(seqs) <= set(published)
    for match in frames:
        assert match is not None
        assert (match["camera"], match["width"], match["height"]) == ("pycam", "240", "180")
    saved = sorted(tmp_path.glob("pycam-*.jpg"))
    assert len(saved) == 5
    decoded = cv2.imread(str(saved[-1]))
    assert decoded is not None and decoded.shape == (180, 240, 3)


def test_java_consumer_reconnects_after_the_gateway_restarts(
    start_service: Start, run_java: Callable[..., subprocess.Popen[str]]
) -> None:
    gateway = start_service("gateway", {"GATEWAY_TOKEN": TOKEN})
    port = gateway.port
    consumer = run_java("Consumer.java", gateway.url, "pycam", "--frames", "2")
    framebus_url = gateway.url

    def send(seq: int) -> None:
        framebus.publish("pycam", np.zeros((48, 64, 3), np.uint8), framebus_url, token=TOKEN, seq=seq)

    deadline = time.monotonic() + 30
    # First frame: keep sending until the consumer (still compiling) has asked for one.
    assert consumer.stdout is not None
    send(1)
    line = consumer.stdout.readline()
    assert "seq=1" in line, line
    gateway.terminate()
    gateway = start_service("gateway", {"GATEWAY_TOKEN": TOKEN}, port=port)
    seq = 2
    while consumer.poll() is None and time.monotonic() < deadline:
        send(seq)
        seq += 1
        time.sleep(0.2)
    out, err = consumer.communicate(timeout=5)
    assert consumer.returncode == 0, err
    assert re.search(r"seq=\d+", out), out
    assert "reconnecting" in err
