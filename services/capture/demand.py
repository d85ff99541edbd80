"""What consumers want of this camera, read from their demand marker (shared/demand.py).

CAPTURE_ON_DEMAND: without a marker capture keeps its source open but encodes a trickle
(CAPTURE_IDLE_FPS) for liveness and snapshots; a consumer's publish on ``framebus:demand``
brings full rate back at once. Unthrottled (CAPTURE_FPS=0): the marker's pace, when the
fastest consumer cannot keep up, caps the encoding rate a little above what it takes.
"""

from __future__ import annotations

import asyncio
import logging
import time

from redis.exceptions import RedisClusterException, RedisError

from services.capture import metrics
from shared.backoff import Backoff
from shared.demand import DEMAND_CHANNEL, REFRESH_SECONDS, demand_key, parse_pace
from shared.redisconn import connect

log = logging.getLogger("framebus.capture.demand")


class DemandWatcher:
    """``idle_fps`` None: never trickles (only the pace is wanted)."""

    def __init__(self, redis_url: str, camera: str, idle_fps: float | None) -> None:
        self.camera = camera
        # Full rate until Redis says otherwise: a watcher that cannot ask must not starve anyone.
        self.wanted = True
        self.pace: float | None = None  # the fastest consumer's frames/s while it cannot keep up
        self._trickles = idle_fps is not None
        self._min_interval = 1.0 / idle_fps if idle_fps else 0.0
        self._pace_gauge = metrics.CONSUMER_PACE.labels(camera)
        self._last_admitted = float("-inf")
        self._redis = connect(redis_url, socket_timeout=REFRESH_SECONDS + 2.0)

    def admit(self) -> bool:
        """Whether to encode the frame at hand: always while wanted, else at the trickle rate."""
        now = time.monotonic()
        if self.wanted or not self._trickles or now - self._last_admitted >= self._min_interval:
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
                self._set_pace(None)
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
                pace = parse_pace(await self._redis.get(demand_key(self.camera)))
                self._set_pace(pace or None)
                wanted = pace is not None
                self._set(wanted, "a consumer wants frames" if wanted else "no consumer wants frames")

    def _set_pace(self, pace: float | None) -> None:
        if (pace is None) != (self.pace is None):
            told = f"the fastest consumer takes {pace:g} fps" if pace else "consumers keep up"
            log.info("camera %s: %s", self.camera, told)
        self.pace = pace
        self._pace_gauge.set(pace or 0)

    def _set(self, wanted: bool, why: str) -> None:
        if not self._trickles:
            self.wanted = True
            return
        if wanted != self.wanted:
            rate = "full rate" if wanted else f"{1 / self._min_interval:g} fps"
            log.info("camera %s: %s: encoding at %s", self.camera, why, rate)
        self.wanted = wanted

    async def close(self) -> None:
        await self._redis.aclose()
