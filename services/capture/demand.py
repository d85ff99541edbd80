"""CAPTURE_ON_DEMAND: encode at full rate only while some consumer wants this camera's frames.

Consumers refresh ``framebus:demand:<camera>`` (see shared/demand.py). Without it, capture
keeps its source open but encodes a trickle (CAPTURE_IDLE_FPS) for liveness and snapshots;
a consumer's publish on ``framebus:demand`` brings full rate back at once.
"""

from __future__ import annotations

import asyncio
import logging
import time

from redis.exceptions import RedisClusterException, RedisError

from shared.backoff import Backoff
from shared.demand import DEMAND_CHANNEL, REFRESH_SECONDS, demand_key
from shared.redisconn import connect

log = logging.getLogger("framebus.capture.demand")


class DemandWatcher:
    def __init__(self, redis_url: str, camera: str, idle_fps: float) -> None:
        self.camera = camera
        # Full rate until Redis says otherwise: a watcher that cannot ask must not starve anyone.
        self.wanted = True
        self._min_interval = 1.0 / idle_fps
        self._last_admitted = float("-inf")
        self._redis = connect(redis_url, socket_timeout=REFRESH_SECONDS + 2.0)

    def admit(self) -> bool:
        """Whether to encode the frame at hand: always while wanted, else at the trickle rate."""
        now = time.monotonic()
        if self.wanted or now - self._last_admitted >= self._min_interval:
            self._last_admitted = now
            return True
        return False

    async def run(self) -> None:
        backoff = Backoff()
        while True:
            try:
                await self._watch()
            except (RedisError, RedisClusterException, OSError) as exc:
                self._set(True, f"cannot read demand ({type(exc).__name__}); full rate meanwhile")
                await asyncio.sleep(backoff.next_delay())

    async def _watch(self) -> None:
        async with self._redis.pubsub() as pubsub:
            await pubsub.subscribe(DEMAND_CHANNEL)
            while True:
                deadline = time.monotonic() + REFRESH_SECONDS
                while (left := deadline - time.monotonic()) > 0:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
                    if message is not None and message.get("data") == self.camera.encode():
                        self._set(True, "a consumer asked")
                wanted = bool(await self._redis.exists(demand_key(self.camera)))
                self._set(wanted, "a consumer wants frames" if wanted else "no consumer wants frames")

    def _set(self, wanted: bool, why: str) -> None:
        if wanted != self.wanted:
            rate = "full rate" if wanted else f"{1 / self._min_interval:g} fps"
            log.info("camera %s: %s: encoding at %s", self.camera, why, rate)
        self.wanted = wanted

    async def close(self) -> None:
        await self._redis.aclose()
