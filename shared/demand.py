"""Who wants a camera's frames, and how fast, told to its producer.

A consumer that wants a camera's frames refreshes ``framebus:demand:<camera>`` with a short
TTL, and publishes the camera id on ``framebus:demand`` when its demand *starts*, so a
producer that trickles (CAPTURE_ON_DEMAND) wakes to full rate at once instead of at its next poll.

The marker's value is ``"<pace> <until ms> <consumer>"``: ``pace`` is the frames per second
the consumer takes while it cannot keep up (it skips frames, so that is as fast as it goes),
``0`` while it keeps up. An unthrottled producer (CAPTURE_FPS=0) encodes at the fastest
consumer's pace instead of encoding frames nobody takes. Several consumers share the marker:
a script keeps the fastest pace (0 beats any) until that pace's own TTL has passed, so a
departed fast consumer cannot hold it up.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterable, Mapping

from redis.exceptions import RedisClusterException, RedisError

from shared.redisconn import RedisClient

DEMAND_CHANNEL = "framebus:demand"
DEMAND_KEY_PREFIX = "framebus:demand:"
# A marker lives this long; consumers refresh it every REFRESH_SECONDS while they want frames.
DEMAND_TTL_MS = 3000
REFRESH_SECONDS = 1.0

log = logging.getLogger("framebus.demand")


# KEYS[1] the marker, ARGV[1] this consumer's pace, ARGV[2] the TTL in ms, ARGV[3] who states
# it (a consumer always replaces its own statement). The server's clock times the pace, so
# consumers' clocks need not agree.
KEEP_FASTEST_PACE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local pace, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local current = redis.call('GET', KEYS[1])
if current and pace ~= 0 then
  local held, till, who = string.match(current, '^(%S+) (%d+) ?(%S*)$')
  held, till = tonumber(held), tonumber(till)
  if held and till and till > now and who ~= ARGV[3] and (held == 0 or held > pace) then
    redis.call('PEXPIRE', KEYS[1], ttl)
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. (now + ttl) .. ' ' .. ARGV[3], 'PX', ttl)
return 1
"""


def demand_key(camera: str) -> str:
    return DEMAND_KEY_PREFIX + camera


def parse_pace(marker: bytes | str | None) -> float | None:
    """The pace a marker asks for: None without a marker, 0.0 for "as fast as you like"."""
    if marker is None:
        return None
    text = marker.decode("ascii", "replace") if isinstance(marker, bytes) else marker
    try:
        pace = float(text.split(" ", 1)[0])
    except ValueError:
        return 0.0  # not a pace we can read: it still says a consumer wants frames
    # An older consumer's plain "1" (no "until" part) wants frames at any rate.
    return pace if pace > 0 and " " in text and pace < float("inf") else 0.0


class DemandSignal:
    """The consumer's side: call ``refresh`` with the cameras wanted now, as often as you like."""

    def __init__(self, client: RedisClient) -> None:
        self._redis = client
        self._refreshed_at: dict[str, float] = {}
        self._behind: set[str] = set()  # cameras whose last marker stated a pace
        self._who = secrets.token_hex(4)  # this consumer, in the markers it writes

    async def refresh(self, cameras: Iterable[str], paces: Mapping[str, float] | None = None) -> None:
        """``paces``: frames per second this consumer takes of a camera it cannot keep up with.
        A marker is written once a second, and at once when the consumer falls behind or catches up."""
        now = time.monotonic()
        wanted = set(cameras)
        paces = {camera: round(pace, 1) for camera, pace in (paces or {}).items() if camera in wanted}
        changed = self._behind.symmetric_difference(c for c, pace in paces.items() if pace > 0)
        due = [
            c
            for c in wanted
            if c in changed or now - self._refreshed_at.get(c, float("-inf")) >= REFRESH_SECONDS
        ]
        starting = [c for c in due if c not in self._refreshed_at]
        for camera in set(self._refreshed_at) - wanted:
            del self._refreshed_at[camera]  # its marker expires by itself
            self._behind.discard(camera)
        if not due:
            return
        try:
            for camera in due:
                pace = paces.get(camera, 0.0)
                # EVAL, not EVALSHA: a 400-byte script once a second needs no SCRIPT LOAD (nor its ACL).
                marker = demand_key(camera)
                await self._redis.eval(KEEP_FASTEST_PACE, 1, marker, f"{pace:g}", DEMAND_TTL_MS, self._who)
            # Not pipelined: a cluster client refuses PUBLISH in a pipeline.
            for camera in starting:
                await self._redis.publish(DEMAND_CHANNEL, camera)
        except (RedisError, RedisClusterException, OSError) as exc:
            log.debug("could not signal demand: %s", exc)  # the frames' own path reports Redis down
            return
        for camera in due:
            if paces.get(camera, 0.0) > 0:
                self._behind.add(camera)
            else:
                self._behind.discard(camera)
        for camera in due:
            self._refreshed_at[camera] = now
