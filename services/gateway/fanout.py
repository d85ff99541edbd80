"""Each WebSocket subscriber gets a camera's newest frame; a slow one skips, it never queues.

With ``?pull=1`` a frame is sent only after the subscriber asked for one with a text message
``next``: a consumer slower than the camera then receives only frames it will use.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import WSCloseCode, WSMsgType, web

from services.gateway import metrics
from services.gateway.hub import CameraHub
from shared.logs import ChurnLog, RateLimitedLog
from shared.newest import BroadcastClosed
from shared.wire_ws import PULL_REQUEST

log = logging.getLogger("framebus.gateway")
stall_log = RateLimitedLog(log)
# Joins and leaves are worth a line each, but 500 connects in a second must not write 1000.
churn_log = ChurnLog(log, "subscriber")

# Subscribers send nothing but "next" and control frames: a small bound keeps a peer from
# making the gateway buffer large messages.
MAX_SUBSCRIBER_MESSAGE_BYTES = 4096


class Subscriber:
    """One WebSocket subscriber. A peer that stops reading is closed after ``stall_seconds``
    (a send that cannot finish): its buffers are freed and nobody else waits for it."""

    def __init__(
        self, ws: web.WebSocketResponse, transport: asyncio.Transport | None, hub: CameraHub, camera: str
    ) -> None:
        self.ws = ws
        self.camera = camera
        self._transport = transport
        self._hub = hub
        self._wanted: asyncio.Event | None = None

    def pull_mode(self) -> None:
        self._wanted = asyncio.Event()

    async def serve(self, stale_seconds: float, stall_seconds: float) -> None:
        """Until the peer leaves: reading processes its pings, close frame and requests."""
        sender = asyncio.create_task(self._send_newest_frames(stale_seconds, stall_seconds))
        try:
            async for message in self.ws:
                if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                    break
                if (
                    self._wanted is not None
                    and message.type == WSMsgType.TEXT
                    and message.data == PULL_REQUEST
                ):
                    self._wanted.set()  # one pending request at most, however often it is asked
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            await self.ws.close()

    async def _send_newest_frames(self, stale_seconds: float, stall_seconds: float) -> None:
        try:
            # A camera that has not sent a frame yet has no feed (nor metric labels): wait for it.
            feed = await self._hub.wait_for_feed(self.camera)
        except BroadcastClosed:
            await self.ws.close(code=WSCloseCode.GOING_AWAY)
            return
        metrics.SUBSCRIBERS.labels(self.camera).inc()
        churn_log.joined("subscriber joined camera %s", self.camera)
        seen = 0
        try:
            while not self.ws.closed:
                if self._wanted is not None:
                    await self._wanted.wait()
                version, frame = await feed.frames.next_after(seen)
                if not seen and frame.age > stale_seconds:
                    seen = version  # a camera's last frame from long ago is not live video
                    continue
                if self._wanted is not None:
                    self._wanted.clear()  # this frame answers the pending request
                if seen and version - seen > 1:
                    skipped = version - seen - 1
                    metrics.FRAMES_DROPPED.labels(self.camera, "subscriber", "slow_subscriber").inc(skipped)
                seen = version
                # send_bytes waits while the socket is full, so a slow peer skips to the newest frame.
                async with asyncio.timeout(stall_seconds):
                    await self.ws.send_bytes(frame.ws_message)
        except TimeoutError:
            self._evict(stall_seconds)
        except (BroadcastClosed, ConnectionResetError):
            await self.ws.close(code=WSCloseCode.GOING_AWAY)
        finally:
            metrics.SUBSCRIBERS.labels(self.camera).dec()
            churn_log.left("subscriber left camera %s", self.camera)

    def _evict(self, stall_seconds: float) -> None:
        # A close frame would queue behind the unread data: drop the connection instead.
        metrics.SUBSCRIBERS_EVICTED.labels(self.camera).inc()
        stall_log.warning("closed a subscriber of %s that read nothing for %gs", self.camera, stall_seconds)
        if self._transport is not None:
            self._transport.abort()
