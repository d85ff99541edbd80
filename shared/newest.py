"""Newest-value-wins hand-offs between asyncio tasks: nothing here ever queues.

:class:`NewestSlot` connects one producer to one consumer: ``put`` overwrites whatever the
consumer has not taken yet, and reports it through ``on_drop`` so the caller can count it;
a producer that pulls its values can ``wait_empty`` instead, and drop nothing.
:class:`Broadcast` gives many readers the newest value; each reader remembers the last
version it saw, which makes it a size-1 slot per reader, and learns how many it skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class NewestSlot(Generic[T]):
    def __init__(self, on_drop: Callable[[T], None] | None = None) -> None:
        self._value: T | None = None
        self._has_value = False
        self._ready = asyncio.Event()
        self._emptied = asyncio.Event()
        self._emptied.set()
        self._on_drop = on_drop

    def put(self, value: T) -> None:
        if self._has_value and self._on_drop is not None:
            self._on_drop(self._value)  # type: ignore[arg-type]
        self._value = value
        self._has_value = True
        self._ready.set()
        self._emptied.clear()

    async def get(self) -> T:
        while not self._has_value:
            self._ready.clear()
            await self._ready.wait()
        value = self._value
        self._value = None
        self._has_value = False
        self._ready.clear()
        self._emptied.set()
        return value  # type: ignore[return-value]

    def clear(self) -> None:
        """Forgets the value, if any, without counting it as dropped (it is discarded on purpose)."""
        self._value = None
        self._has_value = False
        self._ready.clear()
        self._emptied.set()

    async def wait_empty(self) -> None:
        """Until the consumer has taken the value: a producer that can choose *when* to fetch
        (rather than being pushed to) fetches then, and nothing is fetched only to be dropped."""
        await self._emptied.wait()


class BroadcastClosed(Exception):
    """The broadcast has ended (service shutdown); readers should finish."""


class Broadcast(Generic[T]):
    """Newest value for any number of readers; a slow reader skips, it never queues."""

    def __init__(self) -> None:
        self.closed = False
        self.version = 0
        self._value: T | None = None
        self._changed: asyncio.Future[None] | None = None  # created on first wait, in the running loop

    @property
    def latest(self) -> T | None:
        return self._value

    def publish(self, value: T) -> None:
        self._value = value
        self.version += 1
        changed, self._changed = self._changed, None
        if changed is not None and not changed.done():
            changed.set_result(None)

    async def next_after(self, seen_version: int) -> tuple[int, T]:
        """Wait for a value newer than ``seen_version``; return (version, value).

        ``version - seen_version - 1`` values were skipped by this reader.
        """
        while self.version <= seen_version or self._value is None:
            if self.closed:
                raise BroadcastClosed
            if self._changed is None:
                self._changed = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._changed)
        return self.version, self._value

    def close(self) -> None:
        """Wake every waiting reader with BroadcastClosed (used at shutdown)."""
        self.closed = True
        changed, self._changed = self._changed, None
        if changed is not None and not changed.done():
            changed.set_result(None)
