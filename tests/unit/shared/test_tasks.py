"""Stopping background tasks: a lost cancellation cannot keep a reader running, and a task
that ignores its cancellation cannot hang whoever stops it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import pytest

from shared import tasks
from shared.backoff import Backoff
from shared.tasks import BackgroundTasks
from shared.transport import TransportLink
from shared.upstream import until_it_answers

log = logging.getLogger("test")


async def swallowing_read() -> str:
    """A library read that loses a cancellation landing as its reply arrives (seen with
    redis-py's wait_for on Python 3.11): it returns the reply instead of raising."""
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(10)
    return "reply"


async def test_a_reader_loop_stops_even_when_a_read_swallowed_its_cancellation() -> None:
    link = TransportLink("redis", "upstream", log)
    replies = 0

    async def reader() -> None:
        nonlocal replies
        while True:
            await until_it_answers(swallowing_read, link, Backoff())
            replies += 1

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 1)
    assert replies == 0


async def test_cancelling_a_task_that_ignores_it_gives_up_after_stop_seconds(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(tasks, "STOP_SECONDS", 0.2)

    released = asyncio.Event()  # lets the abandoned task end with the test

    async def stubborn() -> None:
        while not released.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await released.wait()

    owner = BackgroundTasks()
    owner.start("stubborn", stubborn)
    await asyncio.sleep(0.01)
    started = time.monotonic()
    await owner.cancel("stubborn")
    assert time.monotonic() - started < 1.0
    assert "stubborn" not in owner
    assert "did not stop" in caplog.text
    released.set()
