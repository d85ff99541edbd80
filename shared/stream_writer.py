"""Appending frames to the Redis bus: a camera's stream, and the camera in the registry.

Capture's Redis sink and the gateway's backplane write through this one class, so every
frame on the bus has the same fields whoever produced it (see docs/protocol.md).
"""

from __future__ import annotations

import time

from shared import registry
from shared.redisconn import RedisClient
from shared.registry import Command
from shared.wire import FrameMeta, stream_key, to_stream_fields

# How often a writer refreshes its camera in the registry (one O(log N) command).
REGISTER_INTERVAL_SECONDS = 1.0
# How often a writer removes cameras idle for longer than CAMERA_IDLE_SECONDS.
PRUNE_INTERVAL_SECONDS = 10.0


class StreamWriter:
    def __init__(self, client: RedisClient, maxlen: int, idle_seconds: float) -> None:
        self._redis = client
        self._maxlen = maxlen
        self._idle_seconds = idle_seconds
        self._register_at: dict[str, float] = {}
        self._prune_at = 0.0

    async def append(self, meta: FrameMeta, jpeg: bytes, *, register: bool = False) -> None:
        """XADD with an exact MAXLEN; re-registers the camera every second, or now if asked
        (after a reconnect: a Redis restarted empty between two frames would forget us)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for command in self.commands(meta, jpeg, register=register):
                pipe.execute_command(*command)
            await pipe.execute()

    def commands(self, meta: FrameMeta, jpeg: bytes, *, register: bool = False) -> list[Command]:
        """The commands that append one frame: the XADD, last, after any registry upkeep due."""
        now = time.monotonic()
        commands: list[Command] = []
        if register or now >= self._register_at.get(meta.camera, 0.0):
            commands.append(registry.register_command(meta.camera))
            self._register_at[meta.camera] = now + REGISTER_INTERVAL_SECONDS
        if now >= self._prune_at:
            commands += registry.prune_commands(self._idle_seconds)
            self._prune_at = now + PRUNE_INTERVAL_SECONDS
        # Exact MAXLEN ("="): with "~" Redis trims whole 100-entry nodes, so a stream of
        # 150 KiB JPEGs could hold 100+ of them instead of the few we asked for.
        fields = [item for pair in to_stream_fields(meta, jpeg).items() for item in pair]
        commands.append(("XADD", stream_key(meta.camera), "MAXLEN", "=", self._maxlen, "*", *fields))
        return commands

    def forget(self, camera: str) -> None:
        self._register_at.pop(camera, None)
