"""Browser-like MJPEG readers: N connections to /stream.mjpg, counting parts.

``python -m bench.readers URL N``: runs until SIGTERM, then prints {"parts": [...], "bytes": n}.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import aiohttp

BOUNDARY = b"--framebusframe"


async def read_stream(session: aiohttp.ClientSession, url: str, counts: list[int], index: int) -> int:
    """Reads one stream until cancelled; counts boundaries (a chunk may split one: keep a tail)."""
    total = 0
    tail = b""
    async with session.get(url) as response:
        async for chunk in response.content.iter_any():
            total += len(chunk)
            data = tail + chunk
            counts[index] += data.count(BOUNDARY)
            tail = data[-(len(BOUNDARY) - 1) :]
    return total


async def main(url: str, n: int) -> None:
    counts = [0] * n
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout()) as session:
        tasks = [asyncio.create_task(read_stream(session, url, counts, i)) for i in range(n)]
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps({"parts": counts}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
