"""WebSocket subscribers for the replicas bench: N connections to a camera's ``/ws``, counting frames.

``python -m bench.ws_subscribers --count N [--camera cam0] [--pull] URL [URL ...]`` (gateway base
URLs, subscribers spread round-robin over them). Once every connection is open or has failed it
prints ``{"connected": n, "failed": m}``. SIGUSR1 starts the measured window; SIGTERM ends it,
prints one JSON line (each subscriber's distinct frames in the window, frames received twice, the
camera's sequence numbers spanned, a latency histogram) and exits. With ``--pull`` the
subscribers use pull mode and never ask for a frame: they are idle watchers that cost the
gateway nothing per frame.

Latency is receipt here minus the frame's ``sent_ns`` (capture handed it to the bus), so it
includes this process's own scheduling delay: it is kept lean (the JSON header is parsed, the
JPEG never decoded) because it shares the machine's cores with the gateways.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import struct
import sys
import time
from collections import Counter
from dataclasses import dataclass

import aiohttp
import uvloop

# The gateway closes the oldest of more than 64 connections still sending their request headers
# (shared/runner.py): connecting in bounded batches keeps a big step from tripping it.
CONNECT_CONCURRENCY = 16
CONNECT_TIMEOUT_SECONDS = 20.0
LATENCY_BUCKET_NS = 100_000  # histogram resolution: 0.1 ms
_HEADER_LEN = struct.Struct(">I")


@dataclass
class Tally:
    """One subscriber: frames received inside the window, and whether it is still open."""

    frames: int = 0  # distinct: a newer sequence number than any before
    duplicates: int = 0  # a sequence number this subscriber already had (or older)
    last_seq: int = 0
    open: bool = False


class Window:
    """The measured window, shared by every subscriber of this process."""

    def __init__(self) -> None:
        self.measuring = False
        self.newest_seq = 0  # the newest sequence number any subscriber has received
        self._start_seq = 0
        self._started_ns = 0
        self.latency_buckets: Counter[int] = Counter()

    def start(self, tallies: list[Tally]) -> None:
        for tally in tallies:
            tally.frames = tally.duplicates = 0
        self.latency_buckets.clear()
        self._start_seq = self.newest_seq
        self._started_ns = time.monotonic_ns()
        self.measuring = True

    def record(self, tally: Tally, message: bytes) -> None:
        received_ns = time.time_ns()
        seq, sent_ns = header_fields(message)
        self.newest_seq = max(self.newest_seq, seq)
        fresh = seq > tally.last_seq
        tally.last_seq = max(tally.last_seq, seq)
        if not self.measuring:
            return
        if not fresh:
            tally.duplicates += 1  # a gateway fault, counted apart so it cannot pass for delivery
            return
        tally.frames += 1
        self.latency_buckets[max(0, received_ns - sent_ns) // LATENCY_BUCKET_NS] += 1

    def summary(self, tallies: list[Tally]) -> dict[str, object]:
        return {
            "frames": [t.frames for t in tallies],
            "duplicates": sum(t.duplicates for t in tallies),
            "open": sum(t.open for t in tallies),
            # Frames the camera published in the window, as seen by the most up-to-date subscriber.
            "expected": self.newest_seq - self._start_seq if self.measuring else 0,
            "seconds": (time.monotonic_ns() - self._started_ns) / 1e9 if self.measuring else 0.0,
            "latency_bucket_ms": LATENCY_BUCKET_NS / 1e6,
            "latency_buckets": {str(k): v for k, v in sorted(self.latency_buckets.items())},
        }


def header_fields(message: bytes) -> tuple[int, int]:
    """(seq, sent_ns) from a gateway WebSocket message (docs/protocol.md); the JPEG is not read."""
    (length,) = _HEADER_LEN.unpack_from(message)
    header = json.loads(message[_HEADER_LEN.size : _HEADER_LEN.size + length])
    return int(header["seq"]), int(header["sent_ns"])


async def connect(
    session: aiohttp.ClientSession, url: str, slots: asyncio.Semaphore
) -> aiohttp.ClientWebSocketResponse | None:
    async with slots:
        try:
            # max_msg_size=0: a 1080p JPEG can pass aiohttp's 4 MiB default.
            return await session.ws_connect(url, compress=0, max_msg_size=0, autoping=True)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            print(f"connect {url}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            return None


async def receive(ws: aiohttp.ClientWebSocketResponse, tally: Tally, window: Window) -> None:
    """Until the gateway closes the connection (or this task is cancelled at the end)."""
    tally.open = True
    try:
        while True:
            message = await ws.receive()
            if message.type == aiohttp.WSMsgType.BINARY:
                window.record(tally, message.data)
            elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                return
    finally:
        tally.open = False


def subscriber_urls(bases: list[str], camera: str, count: int, pull: bool = False) -> list[str]:
    """``count`` WebSocket URLs of ``camera``, round-robin over the gateways' base URLs."""
    ws_bases = [base.rstrip("/").replace("http://", "ws://", 1) for base in bases]
    query = "?pull=1" if pull else ""
    return [f"{ws_bases[i % len(ws_bases)]}/cameras/{camera}/ws{query}" for i in range(count)]


async def run(urls: list[str]) -> None:
    tallies = [Tally() for _ in urls]
    window = Window()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, window.start, tallies)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
        slots = asyncio.Semaphore(CONNECT_CONCURRENCY)
        sockets = await asyncio.gather(*(connect(session, url, slots) for url in urls))
        tasks = [
            asyncio.create_task(receive(ws, tally, window))
            for ws, tally in zip(sockets, tallies, strict=True)
            if ws is not None
        ]
        failed = sum(ws is None for ws in sockets)
        print(json.dumps({"connected": len(tasks), "failed": failed}), flush=True)
        await stop.wait()
        # The figures first: closing hundreds of sockets afterwards must not blur the window.
        print(json.dumps(window.summary(tallies)), flush=True)
        for task in tasks:
            task.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                await asyncio.gather(*tasks, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ws_subscribers", description=__doc__)
    parser.add_argument("--count", type=int, required=True, help="subscribers to open")
    parser.add_argument("--camera", default="cam0")
    parser.add_argument("--pull", action="store_true", help="idle pull-mode subscribers")
    parser.add_argument("gateways", nargs="+", help="gateway base URLs (http://host:port)")
    args = parser.parse_args()
    uvloop.run(run(subscriber_urls(args.gateways, args.camera, args.count, args.pull)))


if __name__ == "__main__":
    main()
