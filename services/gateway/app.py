"""Gateway app: HTTP ingest of JPEG frames, newest frame per camera, WebSocket fan-out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator

from aiohttp import WSCloseCode, web

from services.gateway.access import install_access_control
from services.gateway.backplane import RedisBackplane
from services.gateway.bus import GatewayFrames, LocalFrames
from services.gateway.hub import CameraHub
from services.gateway.results import add_results_routes
from services.gateway.settings import GatewaySettings
from services.gateway.views import (
    FRAMES,
    SETTINGS,
    WEBSOCKETS,
    ingest_frame,
    latest_frame,
    list_cameras,
    subscribe,
)
from shared.health import Readiness, add_health_routes
from shared.logs import redact

log = logging.getLogger("framebus.gateway")

# on_shutdown is not covered by aiohttp's shutdown_timeout: bound it here.
CLOSE_SUBSCRIBERS_SECONDS = 1.0


def create_app(settings: GatewaySettings) -> web.Application:
    app = web.Application(client_max_size=settings.gateway_max_frame_bytes)
    app[SETTINGS] = settings
    app[WEBSOCKETS] = weakref.WeakSet[web.WebSocketResponse]()
    readiness = Readiness()
    add_health_routes(app, readiness)
    app.router.add_post("/cameras/{camera}/frames", ingest_frame)
    app.router.add_get("/cameras/{camera}/latest.jpg", latest_frame)
    app.router.add_get("/cameras/{camera}/ws", subscribe)
    app.router.add_get("/cameras", list_cameras)
    add_results_routes(app)
    install_access_control(app, settings)  # tokens and scopes; says at start whether auth is off

    async def run_frames(app: web.Application) -> AsyncIterator[None]:
        frames = app[FRAMES] = make_frames(settings)
        # Ready once it accepts frames; waiting for a camera here would deadlock a deployment
        # whose capture waits for the gateway to be ready.
        readiness.add("ingest", frames.readiness)
        yield
        await frames.close()

    app.cleanup_ctx.append(run_frames)
    app.on_shutdown.append(_close_subscribers)
    return app


def make_frames(settings: GatewaySettings) -> GatewayFrames:
    hub = CameraHub(settings.gateway_max_cameras, settings.camera_idle_seconds)
    if settings.gateway_backplane == "none":
        return LocalFrames(hub)
    backplane = RedisBackplane(hub, settings)
    backplane.start()
    log.info("frames travel on the Redis backplane at %s", redact(settings.redis_url))
    return backplane


async def _close_subscribers(app: web.Application) -> None:
    # Subscribers wait on endless broadcasts; aiohttp waits for handlers before cleanup.
    app[FRAMES].hub.close()
    sockets = app[WEBSOCKETS]
    # Concurrently and without draining: one stalled subscriber must not hold up the others.
    closing = [ws.close(code=WSCloseCode.GOING_AWAY, drain=False) for ws in list(sockets)]
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(CLOSE_SUBSCRIBERS_SECONDS):
            await asyncio.gather(*closing, return_exceptions=True)
