"""MJPEG fan-out: one write per client per frame, slow clients skip, gone clients end."""

from __future__ import annotations

import asyncio

from services.viewer import mjpeg
from services.viewer.fanout import SLOW_CLIENT_BUFFER_BYTES, MjpegFanout, StreamClient
from services.viewer.render import RenderedFrame
from shared.newest import Broadcast


class FakeTransport:
    def __init__(self, buffered: int = 0) -> None:
        self.writes: list[bytes] = []
        self.buffered = buffered
        self.closing = False
        self.aborted = False

    def abort(self) -> None:
        self.aborted = self.closing = True

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return self.buffered


def frame(n: int) -> RenderedFrame:
    return RenderedFrame(b"\xff\xd8jpeg%d\xff\xd9" % n, n, True, 0)


async def test_every_client_gets_each_frame_framed_for_its_protocol() -> None:
    frames: Broadcast[RenderedFrame] = Broadcast()
    fanout = MjpegFanout("cam0", frames)
    plain, chunked = FakeTransport(), FakeTransport()
    fanout.add(StreamClient(plain, chunked=False, browser_framing=False))
    fanout.add(StreamClient(chunked, chunked=True, browser_framing=False))
    runner = asyncio.create_task(fanout.run())
    frames.publish(frame(1))
    await asyncio.sleep(0.01)
    assert plain.writes == [mjpeg.part(frame(1).jpeg)]
    assert chunked.writes == [mjpeg.chunk(mjpeg.part(frame(1).jpeg))]
    frames.close()
    await asyncio.wait_for(runner, 1)


async def test_a_new_client_gets_the_newest_frame_at_once() -> None:
    frames: Broadcast[RenderedFrame] = Broadcast()
    frames.publish(frame(7))
    transport = FakeTransport()
    MjpegFanout("cam0", frames).add(StreamClient(transport, chunked=False, browser_framing=True))
    assert transport.writes == [mjpeg.browser_part(frame(7).jpeg)]


async def test_a_client_with_a_full_buffer_skips_frames_while_others_get_them() -> None:
    frames: Broadcast[RenderedFrame] = Broadcast()
    fanout = MjpegFanout("cam0", frames)
    stalled, reading = FakeTransport(buffered=SLOW_CLIENT_BUFFER_BYTES + 1), FakeTransport()
    fanout.add(StreamClient(stalled, chunked=False, browser_framing=False))
    fanout.add(StreamClient(reading, chunked=False, browser_framing=False))
    runner = asyncio.create_task(fanout.run())
    for n in range(1, 4):
        frames.publish(frame(n))
        await asyncio.sleep(0.01)
    assert stalled.writes == []
    assert len(reading.writes) == 3
    frames.close()
    await asyncio.wait_for(runner, 1)


async def test_a_closed_client_is_removed_and_its_handler_released() -> None:
    frames: Broadcast[RenderedFrame] = Broadcast()
    fanout = MjpegFanout("cam0", frames)
    transport = FakeTransport()
    client = StreamClient(transport, chunked=False, browser_framing=False)
    fanout.add(client)
    runner = asyncio.create_task(fanout.run())
    transport.closing = True
    frames.publish(frame(1))
    await asyncio.wait_for(client.done.wait(), 1)
    assert client not in fanout.clients
    frames.close()
    await asyncio.wait_for(runner, 1)


async def test_shutdown_releases_every_waiting_handler() -> None:
    frames: Broadcast[RenderedFrame] = Broadcast()
    fanout = MjpegFanout("cam0", frames)
    clients = [StreamClient(FakeTransport(), chunked=True, browser_framing=False) for _ in range(3)]
    for client in clients:
        fanout.add(client)
    runner = asyncio.create_task(fanout.run())
    await asyncio.sleep(0)
    frames.close()
    await asyncio.wait_for(runner, 1)
    assert all(client.done.is_set() for client in clients)


async def test_a_client_that_accepts_nothing_for_the_stall_time_is_evicted() -> None:
    frames: Broadcast[RenderedFrame] = Broadcast()
    fanout = MjpegFanout("cam0", frames, stall_seconds=0.05)
    stalled, reading = FakeTransport(buffered=SLOW_CLIENT_BUFFER_BYTES + 1), FakeTransport()
    stalled_client = StreamClient(stalled, chunked=False, browser_framing=False)
    fanout.add(stalled_client)
    fanout.add(StreamClient(reading, chunked=False, browser_framing=False))
    runner = asyncio.create_task(fanout.run())
    frames.publish(frame(1))
    await asyncio.sleep(0.1)
    assert not stalled.aborted  # one full buffer is a slow client, not yet a stalled one
    frames.publish(frame(2))
    await asyncio.sleep(0.01)
    assert stalled.aborted and stalled_client.done.is_set()
    assert stalled_client not in fanout.clients
    assert len(reading.writes) == 2
    frames.close()
    await asyncio.wait_for(runner, 1)
