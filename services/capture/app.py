"""Capture app: the pipeline's tasks plus its own /livez, /readyz and /metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import cv2
from aiohttp import web

from services.capture.service import CaptureService
from services.capture.settings import CaptureSettings
from services.capture.sinks import make_sinks
from shared.health import Readiness, add_health_routes
from shared.memory import keep_frame_buffers_mapped
from shared.tasks import BackgroundTasks

SERVICE = web.AppKey("capture_service", CaptureService)
# The pipeline's tasks end at once when cancelled; if one ever swallowed its cancellation
# (Python 3.11's wait_for could), shutdown must still finish within its grace time.
STOP_TASKS_SECONDS = 0.5
log = logging.getLogger("framebus.capture")


async def _stop_within(tasks: BackgroundTasks, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await tasks.stop()
    except TimeoutError:
        # The timeout cancelled stop()'s gather, which cancelled every task a second time.
        log.error("background tasks did not stop within %.1fs of shutdown; abandoned", seconds)


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
        service = CaptureService(settings, sinks)
        app[SERVICE] = service
        readiness.add("source", service.source_readiness)
        for sink in sinks:
            readiness.add(sink.transport, sink.link.readiness)
        tasks = BackgroundTasks()
        tasks.start("read_source", service.read_source)
        tasks.start("encode_and_publish", service.encode_and_publish)
        for sink in sinks:
            tasks.start(f"publish_{sink.transport}", sink.run)
        yield
        await _stop_within(tasks, STOP_TASKS_SECONDS)
        service.close()
        for sink in sinks:
            await sink.close()

    app.cleanup_ctx.append(pipeline)
    return app
