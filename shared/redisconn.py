"""One way to connect to Redis for every part of framebus (services, client library, bench).

``REDIS_URL`` names a single server (``redis://``, ``rediss://``, ``unix://``). Cluster
support plugs in here, so callers never construct a client themselves.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


def connect(
    url: str, *, socket_timeout: float, connect_timeout: float = 2.0, **options: Any
) -> aioredis.Redis:
    """An asyncio client for ``url``: one immediate retry on a fresh connection (a pooled socket
    that died with a Redis restart); anything slower is the caller's own backoff's job."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        retry=Retry(NoBackoff(), 1),
        **options,
    )
