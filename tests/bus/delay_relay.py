"""A TCP relay that adds a fixed delay, for tests on a kernel without netem.

    python tests/bus/delay_relay.py --listen 127.0.0.1:7000 --target 10.77.0.11:6379 \
        --down-delay-ms 50 --up-delay-ms 0

Every byte coming back from the target ("down", toward the client) is released
``down-delay-ms`` after it arrived; bytes toward the target ("up") after ``up-delay-ms``. Order is
kept (one FIFO per direction, and the delay is constant). Each direction buffers at most
MAX_QUEUED_CHUNKS reads, so a stalled side pushes back instead of growing memory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import time

READ_SIZE = 64 * 1024
MAX_QUEUED_CHUNKS = 1024


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copies reader to writer, each chunk released ``delay`` seconds after it was read."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(MAX_QUEUED_CHUNKS)

    async def release() -> None:
        while True:
            due, chunk = await queue.get()
            if not chunk:
                break
            if (wait := due - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            writer.write(chunk)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()

    releaser = asyncio.create_task(release())
    try:
        while chunk := await reader.read(READ_SIZE):
            await queue.put((time.monotonic() + delay, chunk))
        await queue.put((0.0, b""))
        await releaser
    finally:
        releaser.cancel()


async def relay(
    client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter, args: argparse.Namespace
) -> None:
    host, port = args.target.rsplit(":", 1)
    try:
        target_reader, target_writer = await asyncio.open_connection(host, int(port))
    except OSError:
        client_writer.close()
        return
    for writer in (client_writer, target_writer):
        sock = writer.get_extra_info("socket")
        if sock is not None:  # a frame's last packet must not wait for Nagle
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        await asyncio.gather(
            pump(client_reader, target_writer, args.up_delay_ms / 1000),
            pump(target_reader, client_writer, args.down_delay_ms / 1000),
        )
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        for writer in (client_writer, target_writer):
            writer.close()


async def main(args: argparse.Namespace) -> None:
    host, port = args.listen.rsplit(":", 1)
    server = await asyncio.start_server(lambda r, w: relay(r, w, args), host, int(port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"relaying {args.listen} -> {args.target}", flush=True)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", required=True, help="host:port to accept clients on")
    parser.add_argument("--target", required=True, help="host:port to forward to")
    parser.add_argument("--down-delay-ms", type=float, default=0.0, help="delay toward the client")
    parser.add_argument("--up-delay-ms", type=float, default=0.0, help="delay toward the target")
    asyncio.run(main(parser.parse_args()))
