"""Newest-value hand-offs: nothing queues, everything skipped is reported."""

from __future__ import annotations

import asyncio

import pytest

from shared.newest import Broadcast, BroadcastClosed, NewestSlot


async def test_slot_hands_over_only_the_newest_value_and_reports_the_overwritten() -> None:
    dropped: list[int] = []
    slot: NewestSlot[int] = NewestSlot(dropped.append)
    for value in (1, 2, 3):
        slot.put(value)
    assert await slot.get() == 3
    assert dropped == [1, 2]
    await asyncio.wait_for(slot.wait_empty(), 0.1)  # taken: the slot is empty again


async def test_a_pulling_producer_waits_until_the_consumer_took_the_value() -> None:
    slot: NewestSlot[int] = NewestSlot()
    slot.put(1)
    waiter = asyncio.create_task(slot.wait_empty())
    await asyncio.sleep(0)
    assert not waiter.done()
    assert await slot.get() == 1
    await asyncio.wait_for(waiter, 1)


async def test_slot_get_waits_for_a_value() -> None:
    slot: NewestSlot[str] = NewestSlot()
    getter = asyncio.create_task(slot.get())
    await asyncio.sleep(0)
    assert not getter.done()
    slot.put("frame")
    assert await asyncio.wait_for(getter, 1) == "frame"


async def test_broadcast_reader_skips_to_newest_and_learns_how_many_it_missed() -> None:
    frames: Broadcast[str] = Broadcast()
    frames.publish("a")
    version, value = await frames.next_after(0)
    assert (version, value) == (1, "a")
    for value in ("b", "c", "d"):
        frames.publish(value)
    newest_version, newest = await frames.next_after(version)
    assert newest == "d"
    assert newest_version - version - 1 == 2  # b and c were skipped by this reader


async def test_broadcast_wakes_every_waiting_reader_with_the_same_value() -> None:
    frames: Broadcast[int] = Broadcast()
    readers = [asyncio.create_task(frames.next_after(0)) for _ in range(50)]
    await asyncio.sleep(0)
    frames.publish(7)
    results = await asyncio.wait_for(asyncio.gather(*readers), 1)
    assert results == [(1, 7)] * 50


async def test_closed_broadcast_ends_waiting_readers() -> None:
    frames: Broadcast[int] = Broadcast()
    reader = asyncio.create_task(frames.next_after(0))
    await asyncio.sleep(0)
    frames.close()
    with pytest.raises(BroadcastClosed):
        await asyncio.wait_for(reader, 1)
