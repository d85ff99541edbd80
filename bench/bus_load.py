"""Load for the capacity case (bench/capacity.py): camera-like publishers and subscribers, bus only.

``python -m bench.bus_load publish --url URL --cameras cam0,cam1 --fps 15 --jpeg a.jpg … --ready R --out O``
appends pre-encoded JPEGs through :class:`shared.stream_writer.StreamWriter` (capture's own write
path, one Redis client per camera as one capture process per camera would have), paced per camera.

``python -m bench.bus_load subscribe --url URL --camera cam0 --camera cam0 --camera cam1 … --ready R --out O``
runs one newest-wins reader per ``--camera`` (repeat it for several subscribers of one camera), each
with its own Redis client, through :class:`shared.upstream_redis.RedisCameraReader`: the reader
under ``framebus.subscribe(camera, url)`` and the viewer's follower, on both backends (without the
library's frame objects and thread, which would measure the load generator more than the bus).

Both run on uvloop until SIGTERM, touch ``--ready`` once every camera or reader has spoken to
Redis, and at SIGTERM write their per-frame records to ``--out`` as JSON (write-then-rename)
before closing anything. The bench process reads the records and picks its window from them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvloop
from redis.exceptions import RedisError

from shared.redisconn import connect
from shared.registry import DEFAULT_IDLE_SECONDS
from shared.stream_writer import StreamWriter
from shared.upstream import CameraReader, UpstreamError
from shared.upstream_redis import RedisUpstream
from shared.wire import FrameMeta, check_jpeg

# REDIS_STREAM_MAXLEN's default in services/*/settings.py: what a default capture writes.
STREAM_MAXLEN = 8
WRITE_TIMEOUT_SECONDS = 5.0
# After a failed read a subscription waits this long first (framebus.client's first step).
RETRY_SECONDS = 0.2
READY_POLL_SECONDS = 0.05
CLOSE_TIMEOUT_SECONDS = 3.0


# --- publisher ---------------------------------------------------------------------------------


@dataclass
class CameraLog:
    """What one paced camera did: (seq, sent_ns) of every frame Redis accepted."""

    sent: list[tuple[int, int]] = field(default_factory=list)
    errors: int = 0
    late: int = 0  # schedule slots given up because the previous append took too long


def next_slot(start: float, period: float, slot: int, now: float) -> tuple[int, int]:
    """The slot to send next after ``slot`` and how many slots were given up for it.

    A camera does not queue frames it could not send in time: like capture (newest wins), a
    late camera jumps to the current slot, and the missed ones show up as fewer frames sent."""
    due = slot + 1
    current = math.floor((now - start) / period)
    if current > due:
        return current, current - due
    return due, 0


async def run_camera(
    writer: StreamWriter, camera: str, jpegs: Sequence[bytes], fps: float, offset: float, log: CameraLog
) -> None:
    info = check_jpeg(jpegs[0])
    loop = asyncio.get_running_loop()
    period = 1.0 / fps
    start = loop.time() + offset
    slot, seq = -1, 0
    while True:
        slot, missed = next_slot(start, period, slot, loop.time())
        log.late += missed
        await asyncio.sleep(max(0.0, start + slot * period - loop.time()))
        seq += 1
        now_ns = time.time_ns()
        meta = FrameMeta(camera, seq, now_ns, now_ns, info.width, info.height)
        try:
            await writer.append(meta, jpegs[seq % len(jpegs)], register=seq == 1)
        except (RedisError, OSError):
            log.errors += 1
            continue
        log.sent.append((seq, now_ns))


async def publish(args: argparse.Namespace, jpegs: Sequence[bytes]) -> None:
    cameras: list[str] = args.cameras.split(",")
    clients = [connect(args.url, socket_timeout=WRITE_TIMEOUT_SECONDS) for _ in cameras]
    logs = {camera: CameraLog() for camera in cameras}
    # Cameras are not in phase with each other: spread their first frames over one period.
    tasks = [
        asyncio.create_task(
            run_camera(
                StreamWriter(client, STREAM_MAXLEN, DEFAULT_IDLE_SECONDS),
                camera,
                jpegs,
                args.fps,
                index / len(cameras) / args.fps,
                logs[camera],
            )
        )
        for index, (camera, client) in enumerate(zip(cameras, clients, strict=True))
    ]

    def records() -> dict[str, Any]:
        return {
            "cameras": {
                camera: {"sent": log.sent, "errors": log.errors, "late": log.late}
                for camera, log in logs.items()
            }
        }

    await serve(tasks, lambda: all(log.sent for log in logs.values()), args, records)
    await close_all([client.aclose() for client in clients])


# --- subscriber --------------------------------------------------------------------------------


@dataclass
class ReaderLog:
    """What one subscriber received: (seq, sent_ns, received_ns) per frame handed over."""

    camera: str
    frames: list[tuple[int, int, int]] = field(default_factory=list)
    errors: int = 0
    malformed: int = 0
    reader: CameraReader | None = None

    @property
    def connected(self) -> bool:
        """The reader has had an answer from Redis (it may now block waiting for frames)."""
        return self.reader is not None and self.reader.connected


async def run_reader(url: str, log: ReaderLog) -> None:
    """One subscriber with its own connection, as one ``framebus.subscribe`` would have."""

    def malformed(reason: str, detail: str) -> None:
        log.malformed += 1

    upstream = RedisUpstream(url, malformed, DEFAULT_IDLE_SECONDS)
    reader = log.reader = upstream.reader(log.camera)
    try:
        while True:
            try:
                delivery = await reader.pull()
            except UpstreamError:
                log.errors += 1
                await asyncio.sleep(RETRY_SECONDS)
                continue
            log.frames.append((delivery.meta.seq, delivery.meta.sent_ns, time.time_ns()))
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
                await upstream.close()


async def subscribe(args: argparse.Namespace) -> None:
    logs = [ReaderLog(camera) for camera in args.camera]
    tasks = [asyncio.create_task(run_reader(args.url, log)) for log in logs]

    def records() -> dict[str, Any]:
        return {
            "subscribers": [
                {"camera": log.camera, "frames": log.frames, "errors": log.errors, "malformed": log.malformed}
                for log in logs
            ]
        }

    await serve(tasks, lambda: all(log.connected for log in logs), args, records)


# --- both --------------------------------------------------------------------------------------


async def serve(
    tasks: list[asyncio.Task[None]],
    ready: Callable[[], bool],
    args: argparse.Namespace,
    records: Callable[[], dict[str, Any]],
) -> None:
    """Touch ``--ready`` once ``ready()`` holds, run until SIGTERM/SIGINT, write ``records()`` to
    ``--out`` at once, then cancel ``tasks``.

    The records are written before any clean-up, so a clean-up that hangs (the bench kills us
    after a few seconds) loses nothing. A task that fails ends the run at once (its exception
    propagates): a load generator that silently lost a camera would make the bus look better
    than it is."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    stopping = asyncio.create_task(stop.wait())
    try:
        while not ready():
            await _first_of(tasks, stopping, READY_POLL_SECONDS)
        await asyncio.to_thread(Path(args.ready).touch)
        while not stopping.done():
            await _first_of(tasks, stopping, None)
        await asyncio.to_thread(write_json, Path(args.out), records())
    finally:
        stopping.cancel()
        await cancel_all(tasks)


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and wait a bounded time. A task still running then is cancelled once
    more: redis-py 8.1's asyncio client was seen to swallow one (cluster readers, a publisher)."""
    for attempt in range(2):
        for task in tasks:
            task.cancel()
        _, pending = await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT_SECONDS) if tasks else (set(), set())
        if not pending:
            return
        print(
            f"{len(pending)} task(s) still running after cancel #{attempt + 1}", file=sys.stderr, flush=True
        )
        tasks = list(pending)


async def _first_of(
    tasks: list[asyncio.Task[None]], stopping: asyncio.Task[bool], wait_seconds: float | None
) -> None:
    done, _ = await asyncio.wait(
        [*tasks, stopping], timeout=wait_seconds, return_when=asyncio.FIRST_COMPLETED
    )
    for task in done:
        if task is not stopping:
            task.result()  # raises what ended it
            raise RuntimeError("a load task ended by itself")


async def close_all(closing: list[Awaitable[None]]) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
            await asyncio.gather(*closing, return_exceptions=True)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write-then-rename, so a reader never sees half a file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, path)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.bus_load", description=__doc__)
    roles = parser.add_subparsers(dest="role", required=True)
    pub = roles.add_parser("publish")
    pub.add_argument("--cameras", required=True, help="comma list of camera ids")
    pub.add_argument("--fps", type=float, required=True)
    pub.add_argument("--jpeg", action="append", required=True, help="a JPEG file (repeat for several)")
    sub = roles.add_parser("subscribe")
    sub.add_argument("--camera", action="append", required=True, help="one subscriber of this camera")
    for role in (pub, sub):
        role.add_argument("--url", required=True)
        role.add_argument("--ready", required=True, help="file touched once every camera/reader is up")
        role.add_argument("--out", required=True, help="JSON written at SIGTERM")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.role == "publish":
        jpegs = [Path(path).read_bytes() for path in args.jpeg]
        uvloop.run(publish(args, jpegs))
    else:
        uvloop.run(subscribe(args))


if __name__ == "__main__":
    main()
