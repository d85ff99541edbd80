"""Viewer app: follow the cameras upstream, render 600x600 once, serve browsers."""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator

from aiohttp import web

from services.viewer.access import install_access_control
from services.viewer.results import add_results_routes
from services.viewer.service import ViewerService
from services.viewer.settings import ViewerSettings
from services.viewer.views import (
    SERVICE,
    SETTINGS,
    STATIC,
    STREAMS,
    cameras,
    index,
    snapshot,
    stats,
    stream_mjpeg,
)
from shared.health import Readiness, add_health_routes


def create_app(settings: ViewerSettings) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    app[STREAMS] = weakref.WeakSet[web.StreamResponse]()
    readiness = Readiness()
    add_health_routes(app, readiness)
    app.router.add_get("/", index)
    app.router.add_get("/stream.mjpg", stream_mjpeg, allow_head=False)  # the fan-out writes a body
    app.router.add_get("/snapshot.jpg", snapshot)
    app.router.add_get("/api/stats", stats)
    app.router.add_get("/api/cameras", cameras)
    app.router.add_static("/static/", str(STATIC), append_version=True)
    add_results_routes(app)
    install_access_control(app, settings)  # tokens, the page's cookie; says at start whether auth is off

    async def run_service(app: web.Application) -> AsyncIterator[None]:
        service = app[SERVICE] = ViewerService(settings)
        service.add_checks(readiness, app[STREAMS])
        service.start()
        yield
        await service.stop()

    app.cleanup_ctx.append(run_service)
    # MJPEG responses never end by themselves, and aiohttp waits for handlers before cleanup:
    # end the streams when shutdown begins, so each handler returns at once.
    app.on_shutdown.append(lambda app: _end_streams(app[SERVICE]))
    return app


async def _end_streams(service: ViewerService) -> None:
    service.end_streams()
