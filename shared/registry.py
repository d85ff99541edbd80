"""The camera registry on the Redis bus: which cameras published lately.

A sorted set, ``framebus:registry``: member = camera id, score = Unix seconds when a writer
last saw a frame of it. Writers (capture, the gateway's backplane, the client library)
refresh their camera every second; readers list only cameras seen within
``CAMERA_IDLE_SECONDS``, and writers prune older members, so ids that stop publishing are
forgotten instead of piling up (a set, as before, kept every id ever added, for ever).
"""

from __future__ import annotations

import time
from typing import cast

from shared.redisconn import RedisClient

REGISTRY_KEY = "framebus:registry"
# CAMERA_IDLE_SECONDS' default: a camera silent this long is forgotten.
DEFAULT_IDLE_SECONDS = 300.0
# Scores further ahead than this (clock skew aside) are forged: a member scored in the year
# 3000 would otherwise be a permanent tile.
FUTURE_SLACK_SECONDS = 60.0


# One Redis command as its arguments, for a pipeline's ``execute_command`` or a raw connection.
Command = tuple[str | bytes | int | float, ...]


def register_command(camera: str, now: float | None = None) -> Command:
    return ("ZADD", REGISTRY_KEY, time.time() if now is None else now, camera)


def prune_commands(idle_seconds: float, now: float | None = None) -> list[Command]:
    now = time.time() if now is None else now
    return [
        ("ZREMRANGEBYSCORE", REGISTRY_KEY, "-inf", f"({now - idle_seconds}"),
        ("ZREMRANGEBYSCORE", REGISTRY_KEY, f"({now + FUTURE_SLACK_SECONDS}", "+inf"),
    ]


async def recent_cameras(client: RedisClient, idle_seconds: float) -> list[tuple[bytes, float]]:
    """(member, last seen Unix seconds) of members seen within ``idle_seconds`` (raw bytes: the
    caller validates them)."""
    now = time.time()
    members = await client.zrangebyscore(
        REGISTRY_KEY, now - idle_seconds, now + FUTURE_SLACK_SECONDS, withscores=True
    )
    return cast(list[tuple[bytes, float]], members)
