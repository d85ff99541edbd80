"""Reading a camera's Redis Stream in tests, with the types redis-py's annotations cannot give."""

from __future__ import annotations

from typing import cast

import redis

# (entry id, fields) as the synchronous client returns them without decode_responses.
StreamEntry = tuple[bytes, dict[bytes, bytes]]


def newest_entries(client: redis.Redis, key: str, count: int | None = None) -> list[StreamEntry]:
    """XREVRANGE ``key`` + - [COUNT ``count``]: newest first."""
    return cast("list[StreamEntry]", client.xrevrange(key, count=count))


def all_entries(client: redis.Redis, key: str) -> list[StreamEntry]:
    """XRANGE ``key`` - +: every entry, oldest first."""
    return cast("list[StreamEntry]", client.xrange(key))
