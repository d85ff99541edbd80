"""Polling instead of bare sleeps: wait until a condition holds, or say clearly what did not."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str | Callable[[], str] = "",
    retry_on: tuple[type[Exception], ...] = (Exception,),
) -> T:
    """Call ``predicate`` until it returns something truthy and return that value.

    Exceptions of the ``retry_on`` types count as "not yet" (the last one is reported); any
    other exception propagates at once (the bench passes ``(OSError, ValueError)`` so that a
    process found dead ends the wait). Raises ``TimeoutError`` after ``timeout`` seconds,
    naming ``message`` (a string or a callable producing one, e.g. a log tail).
    """
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while True:
        try:
            value = predicate()
        except retry_on as exc:
            last_exc = exc
        else:
            if value:
                return value
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise TimeoutError(_describe(predicate, timeout, message, last_exc))


def _describe(
    predicate: Callable[..., object],
    timeout: float,
    message: str | Callable[[], str],
    last_exc: BaseException | None,
) -> str:
    text = message() if callable(message) else message
    name = getattr(predicate, "__qualname__", repr(predicate))
    parts = [f"condition {name} not met within {timeout:g}s"]
    if last_exc is not None:
        parts.append(f"last error: {type(last_exc).__name__}: {last_exc}")
    if text:
        parts.append(text)
    return "; ".join(parts)


async def eventually(predicate: Callable[[], T], within: float = 5.0, interval: float = 0.05) -> T:
    """:func:`wait_until` for in-process asyncio tests: polls without blocking the loop."""
    async with asyncio.timeout(within):
        while True:
            value = predicate()
            if value:
                return value
            await asyncio.sleep(interval)
