"""Capture app: the pipeline's tasks plus its own /livez, /readyz and /metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator

import cv2
from aiohttp import web

from services.capture.demand import DemandWatcher
from services.capture.service import CaptureService
from services.capture.settings import CaptureSettings
from services.capture.sinks import make_sinks
from shared.health import Readiness, add_health_routes
from shared.memory import keep_frame_buffers_mapped
from shared.tasks import BackgroundTasks

SERVICE = web.AppKey("capture_service", CaptureService)


def create_app(settings: CaptureSettings) -> web.Application:
    app = web.Application()
    readiness = Readiness()
    add_health_routes(app, readiness)

    async def pipeline(app: web.Application) -> AsyncIterator[None]:
        # Encoding and reading already run on their own threads; OpenCV's internal pool
        # would only fight them for the same cores.
        cv2.setNumThreads(1)
        keep_frame_buffers_mapped()  # every read allocates a frame-sized array
        sinks = make_sinks(settings)
        demand = None
        if settings.capture_on_demand:
            demand = DemandWatcher(settings.redis_url, settings.camera_id, settings.capture_idle_fps)
        elif settings.capture_fps == 0 and "redis" in settings.transports:
            # Unthrottled: encode at the fastest consumer's pace, not frames nobody takes.
            demand = DemandWatcher(settings.redis_url, settings.camera_id, idle_fps=None)
        service = CaptureService(settings, sinks, demand)
        app[SERVICE] = service
        readiness.add("source", service.source_readiness)
        for sink in sinks:
            readiness.add(sink.transport, sink.link.readiness)
        tasks = BackgroundTasks()
        tasks.start("read_source", service.read_source)
        tasks.start("encode_and_publish", service.encode_and_publish)
        for sink in sinks:
            tasks.start(f"publish_{sink.transport}", sink.run)
        if demand is not None:
            tasks.start("watch_demand", demand.run)
        yield
        await tasks.stop()  # bounded: a task that swallowed its cancellation is abandoned
        service.close()
        for sink in sinks:
            await sink.close()
        if demand is not None:
            await demand.close()

    app.cleanup_ctx.append(pipeline)
    return app
