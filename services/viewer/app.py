"""Viewer app: follow the cameras upstream, render 600x600 once, serve browsers."""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator

import cv2
from aiohttp import web

from services.viewer.access import install_access_control
from services.viewer.followers import make_follower
from services.viewer.pipeline import CameraRegistry
from services.viewer.settings import ViewerSettings
from services.viewer.views import (
    FOLLOWER,
    REGISTRY,
    SETTINGS,
    STATIC,
    STREAMS,
    cameras,
    index,
    snapshot,
    stats,
    stream_mjpeg,
)
from shared.health import CheckResult, Readiness, add_health_routes
from shared.memory import keep_frame_buffers_mapped
from shared.tasks import BackgroundTasks


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
    install_access_control(app, settings)  # tokens, the page's cookie; says at start whether auth is off

    async def pipeline(app: web.Application) -> AsyncIterator[None]:
        cv2.setNumThreads(1)  # two render threads already use both cores
        keep_frame_buffers_mapped()
        tasks = BackgroundTasks()
        registry = CameraRegistry(settings, tasks)
        app[REGISTRY] = registry
        for camera in settings.pinned_cameras:
            registry.ensure(camera)
        follower = make_follower(settings, registry)
        app[FOLLOWER] = follower
        readiness.add(follower.transport, follower.readiness)
        readiness.add("frames", lambda: _default_camera_fresh(registry, settings))
        tasks.start(f"follow_{follower.transport}", follower.run)
        yield
        await tasks.stop()
        registry.close()
        await follower.close()

    app.cleanup_ctx.append(pipeline)
    app.on_shutdown.append(_end_streams)
    return app


def _default_camera_fresh(registry: CameraRegistry, settings: ViewerSettings) -> CheckResult:
    pipeline = registry.get(settings.camera_id)
    if pipeline is None:
        return CheckResult(False, f"camera {settings.camera_id} not followed")
    return pipeline.freshness.check(settings.frame_stale_seconds, f"newest frame of {settings.camera_id}")


async def _end_streams(app: web.Application) -> None:
    # MJPEG responses never end on their own; closing the broadcasts lets each handler return.
    app[REGISTRY].end_streams()
