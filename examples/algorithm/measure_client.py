"""Measure, on your machine, what the client library costs and what a worker pool gains.

    python examples/algorithm/measure_client.py --url redis://localhost:6379/0 overhead
    python examples/algorithm/measure_client.py --url redis://localhost:6379/0 pool --work-ms 80

``overhead``: a producer process publishes a 720p JPEG at 30 fps; a raw redis-py reader
(XREAD from the last id, newest entry of each reply) and then ``framebus.subscribe`` read it for
``--seconds`` each. Printed: p50/p99 of publish → delivery for both, and the difference.

``pool``: the same camera; a CPU-bound stand-in algorithm (``--work-ms`` of single-threaded
blurring per frame) runs as one worker, then as two worker processes in one group. Printed:
frames handled by each setup and the ratio (ideal: 2.0 on two free cores).

Uses camera ``bench-client`` on the given Redis. Prints one JSON object per measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from typing import cast

import cv2
import numpy as np

import framebus
from shared.redisconn import connect
from shared.wire import stream_key

CAMERA = "bench-client"


def noisy_jpeg(width: int, height: int) -> bytes:
    """A camera-like frame (noise compresses like a real scene, ~80 KiB at 720p q80)."""
    rng = np.random.default_rng(1)
    image = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), np.uint8), (0, 0), 1.5)
    return bytes(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])[1])


def produce(url: str, fps: float, seconds: float) -> None:
    jpeg = noisy_jpeg(1280, 720)
    period = 1 / fps
    deadline = time.monotonic() + seconds
    next_at = time.monotonic()
    with framebus.Publisher(CAMERA, url) as publisher:
        while time.monotonic() < deadline:
            publisher.publish(jpeg)  # captured_ns = now: the latency measured is transport only
            next_at += period
            time.sleep(max(0.0, next_at - time.monotonic()))


async def read_raw(url: str, seconds: float) -> list[float]:
    """The minimal correct reader: XREAD from the last id, keep the newest entry of the reply."""
    redis = connect(url, socket_timeout=5)
    key = stream_key(CAMERA)
    newest = cast(list[tuple[bytes, dict[bytes, bytes]]], await redis.xrevrange(key, count=1))
    last_id = newest[0][0] if newest else b"0-0"
    lags: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        reply = await redis.xread({key: last_id}, count=16, block=1000)
        for _, entries in cast(list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]], reply or []):
            last_id, fields = entries[-1]
            lags.append((time.time_ns() - int(fields[b"sent_ns"])) / 1e6)
    await redis.aclose()
    return lags


async def read_library(url: str, seconds: float) -> list[float]:
    lags: list[float] = []
    deadline = time.monotonic() + seconds
    async with framebus.subscribe(CAMERA, url, timeout=5) as frames:
        async for frame in frames:
            lags.append((frame.received_ns - frame.meta.sent_ns) / 1e6)
            if time.monotonic() >= deadline:
                break
    return lags


def summary(lags: list[float]) -> dict[str, float]:
    ordered = sorted(lags)
    return {
        "frames": len(ordered),
        "p50_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))], 3),
    }


def start_producer(url: str, seconds: float) -> subprocess.Popen[bytes]:
    command = [sys.executable, __file__, "--url", url, "produce", "--seconds", str(seconds)]
    return subprocess.Popen(command, env={**os.environ, "PYTHONPATH": os.getcwd()})


def measure_overhead(url: str, seconds: float) -> dict[str, object]:
    producer = start_producer(url, 2 * seconds + 4)
    try:
        time.sleep(2)
        raw = summary(asyncio.run(read_raw(url, seconds)))
        library = summary(asyncio.run(read_library(url, seconds)))
    finally:
        producer.terminate()
        producer.wait()
    added = round(library["p50_ms"] - raw["p50_ms"], 3)
    return {"measure": "overhead", "size": "1280x720", "fps": 30, "raw": raw, "library": library,
            "p50_added_ms": added}  # fmt: skip


def work(frame: framebus.Frame, work_ms: float) -> None:
    """CPU-bound stand-in: decode, then blur until work_ms have passed (one core)."""
    image: np.ndarray = frame.image(scale=2)
    deadline = time.perf_counter() + work_ms / 1000
    while time.perf_counter() < deadline:
        image = cv2.GaussianBlur(image, (5, 5), 0)


def run_worker(url: str, group: str, seconds: float, work_ms: float) -> int:
    cv2.setNumThreads(1)  # one core per worker, as a CPU-bound Python algorithm would use
    handled = 0
    deadline = time.monotonic() + seconds
    with framebus.subscribe(CAMERA, url, group=group, timeout=5) as frames:
        for frame in frames:
            work(frame, work_ms)
            handled += 1
            if time.monotonic() >= deadline:
                break
    return handled


def pool(url: str, workers: int, seconds: float, work_ms: float) -> int:
    group = f"measure-{workers}-{os.getpid()}"
    command = [sys.executable, __file__, "--url", url, "worker", "--group", group,
               "--seconds", str(seconds), "--work-ms", str(work_ms)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, env=env) for _ in range(workers)]
    return sum(int(proc.communicate()[0]) for proc in procs)


def measure_pool(url: str, seconds: float, work_ms: float) -> dict[str, object]:
    producer = start_producer(url, 2 * seconds + 10)
    try:
        time.sleep(2)
        one = pool(url, 1, seconds, work_ms)
        two = pool(url, 2, seconds, work_ms)
    finally:
        producer.terminate()
        producer.wait()
    return {"measure": "pool", "work_ms": work_ms, "seconds": seconds, "one_worker": one,
            "two_workers": two, "ratio": round(two / max(1, one), 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=os.environ.get("REDIS_URL", "redis://localhost:6379/0"))
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("overhead").add_argument("--seconds", type=float, default=10)
    pool_args = sub.add_parser("pool")
    pool_args.add_argument("--seconds", type=float, default=10)
    pool_args.add_argument("--work-ms", type=float, default=80)
    sub.add_parser("produce").add_argument("--seconds", type=float, default=10)
    worker_args = sub.add_parser("worker")
    worker_args.add_argument("--group", required=True)
    worker_args.add_argument("--seconds", type=float, default=10)
    worker_args.add_argument("--work-ms", type=float, default=80)
    args = parser.parse_args()
    if args.command == "overhead":
        print(json.dumps(measure_overhead(args.url, args.seconds)))
    elif args.command == "pool":
        print(json.dumps(measure_pool(args.url, args.seconds, args.work_ms)))
    elif args.command == "produce":
        produce(args.url, 30, args.seconds)
    else:
        print(run_worker(args.url, args.group, args.seconds, args.work_ms))


if __name__ == "__main__":
    main()
