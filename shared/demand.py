"""Who wants a camera's frames, told to its producer (capture on demand, CAPTURE_ON_DEMAND).

A consumer that wants a camera's frames refreshes ``framebus:demand:<camera>`` with a short
TTL, and publishes the camera id on ``framebus:demand`` when its demand *starts*, so a
producer that trickles wakes to full rate at once instead of at its next poll.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from redis.exceptions import RedisClusterException, RedisError

from shared.redisconn import RedisClient

DEMAND_CHANNEL = "framebus:demand"
DEMAND_KEY_PREFIX = "framebus:demand:"
# A marker lives this long; consumers refresh it every REFRESH_SECONDS while they want frames.
DEMAND_TTL_MS = 3000
REFRESH_SECONDS = 1.0

log = logging.getLogger("framebus.demand")


def demand_key(camera: str) -> str:
    return DEMAND_KEY_PREFIX + camera


class DemandSignal:
    """The consumer's side: call ``refresh`` with the cameras wanted now, as often as you like."""

    def __init__(self, client: RedisClient) -> None:
        self._redis = client
        self._refreshed_at: dict[str, float] = {}

    async def refresh(self, cameras: Iterable[str]) -> None:
        now = time.monotonic()
        wanted = set(cameras)
        due = [c for c in wanted if now - self._refreshed_at.get(c, float("-inf")) >= REFRESH_SECONDS]
        starting = [c for c in due if c not in self._refreshed_at]
        for camera in set(self._refreshed_at) - wanted:
            del self._refreshed_at[camera]  # its marker expires by itself
        if not due:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for camera in due:
                    pipe.set(demand_key(camera), b"1", px=DEMAND_TTL_MS)
                await pipe.execute()
            # Not pipelined: a cluster client refuses PUBLISH in a pipeline.
            for camera in starting:
                await self._redis.publish(DEMAND_CHANNEL, camera)
        except (RedisError, RedisClusterException, OSError) as exc:
            log.debug("could not signal demand: %s", exc)  # the frames' own path reports Redis down
            return
        for camera in due:
            self._refreshed_at[camera] = now
