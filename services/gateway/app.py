"""Gateway app: HTTP ingest of JPEG frames, newest frame per camera, WebSocket fan-out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref

from aiohttp import WSCloseCode, web

from services.gateway.access import install_access_control
from services.gateway.hub import CameraHub
from services.gateway.settings import GatewaySettings
from services.gateway.views import (
    HUB,
    SETTINGS,
    WEBSOCKETS,
    ingest_frame,
    latest_frame,
    list_cameras,
    subscribe,
)
from shared.health import CheckResult, Readiness, add_health_routes

log = logging.getLogger("framebus.gateway")


def create_app(settings: GatewaySettings) -> web.Application:
    app = web.Application(client_max_size=settings.gateway_max_frame_bytes)
    hub = CameraHub(settings.gateway_max_cameras)
    app[HUB] = hub
    app[SETTINGS] = settings
    app[WEBSOCKETS] = weakref.WeakSet[web.WebSocketResponse]()
    readiness = Readiness()
    # The gateway is ready once it accepts frames; waiting for a camera here would deadlock
    # a deployment whose capture waits for the gateway to be ready.
    readiness.add("ingest", lambda: CheckResult(True, f"accepting frames, {len(hub.feeds)} camera(s) known"))
    add_health_routes(app, readiness)
    app.router.add_post("/cameras/{camera}/frames", ingest_frame)
    app.router.add_get("/cameras/{camera}/latest.jpg", latest_frame)
    app.router.add_get("/cameras/{camera}/ws", subscribe)
    app.router.add_get("/cameras", list_cameras)
    install_access_control(app, settings)  # tokens and scopes; says at start whether auth is off
    app.on_shutdown.append(_close_subscribers)
    return app


# on_shutdown is not covered by aiohttp's shutdown_timeout: bound it here.
CLOSE_SUBSCRIBERS_SECONDS = 1.0


async def _close_subscribers(app: web.Application) -> None:
    app[HUB].close()
    sockets = app[WEBSOCKETS]
    # Concurrently and without draining: one stalled subscriber must not hold up the others.
    closing = [ws.close(code=WSCloseCode.GOING_AWAY, drain=False) for ws in list(sockets)]
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(CLOSE_SUBSCRIBERS_SECONDS):
            await asyncio.gather(*closing, return_exceptions=True)
