"""Results through the gateway, for HTTP clients: POST one, GET the newest (docs/protocol.md, "Results").

The gateway keeps only the newest result per camera, for at most GATEWAY_MAX_CAMERAS cameras;
bodies are bounded (MAX_RESULT_BYTES) and validated exactly like results on the bus.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable

from aiohttp import web
from prometheus_client import Counter

from services.gateway.backplane import RedisBackplane
from services.gateway.bus import BusUnavailable
from services.gateway.views import FRAMES, SETTINGS, path_camera
from shared.logs import RateLimitedLog
from shared.results import MAX_RESULT_BYTES, FrameResult, ResultError, from_json, to_json

log = logging.getLogger("framebus.gateway.results")
reject_log = RateLimitedLog(log)

RESULTS_RECEIVED = Counter("framebus_results_received_total", "Results accepted, by camera.", ["camera"])
RESULTS_REJECTED = Counter(
    "framebus_results_rejected_total", "Result posts refused, by reason (HTTP 4xx).", ["reason"]
)


class ResultsStore:
    """The newest result of each camera; at most ``max_cameras`` of them."""

    def __init__(self, max_cameras: int) -> None:
        self.max_cameras = max_cameras
        self.newest: dict[str, tuple[FrameResult, bytes, float]] = {}  # result, its JSON, received

    def store(self, result: FrameResult) -> bool:
        if result.camera not in self.newest and len(self.newest) >= self.max_cameras:
            return False
        self.newest[result.camera] = (result, to_json(result), time.monotonic())
        return True


RESULTS = web.AppKey("results", ResultsStore)
# Unlike the other 4xx classes, aiohttp's 413 needs the limit as an argument.
TOO_LARGE = functools.partial(web.HTTPRequestEntityTooLarge, MAX_RESULT_BYTES, MAX_RESULT_BYTES + 1)


def _reject(status: Callable[..., web.HTTPException], reason: str, message: str) -> web.HTTPException:
    RESULTS_REJECTED.labels(reason).inc()
    reject_log.warning("rejected results (%s): %s", reason, message)
    return status(text=message + "\n")


def _refuse_camera(message: str) -> web.HTTPException:
    return _reject(web.HTTPBadRequest, "bad_camera", message)


async def post_results(request: web.Request) -> web.Response:
    # Who may post was settled by the access middleware (services/gateway/access.py).
    camera = path_camera(request, _refuse_camera)
    if request.content_type != "application/json":
        raise _reject(web.HTTPUnsupportedMediaType, "content_type", "Content-Type must be application/json")
    if request.content_length is not None and request.content_length > MAX_RESULT_BYTES:
        raise _reject(TOO_LARGE, "too_large", f"result exceeds {MAX_RESULT_BYTES} bytes")
    try:
        async with asyncio.timeout(request.app[SETTINGS].gateway_body_timeout_seconds):
            # One byte more than allowed tells "too large" from "exactly the limit".
            body = await request.content.read(MAX_RESULT_BYTES + 1)
    except TimeoutError:
        raise _reject(web.HTTPRequestTimeout, "body_timeout", "body not received in time") from None
    if len(body) > MAX_RESULT_BYTES:
        raise _reject(TOO_LARGE, "too_large", f"result exceeds {MAX_RESULT_BYTES} bytes")
    try:
        result = from_json(body, camera)
    except ResultError as exc:
        raise _reject(web.HTTPBadRequest, "invalid", str(exc)) from None
    frames = request.app[FRAMES]
    if isinstance(frames, RedisBackplane):
        # One bus: Redis consumers (the viewer) see results posted over HTTP.
        try:
            await frames.append_result(result)
        except BusUnavailable as exc:
            raise _reject(web.HTTPServiceUnavailable, "backplane_down", str(exc)) from None
    elif not request.app[RESULTS].store(result):
        raise _reject(web.HTTPTooManyRequests, "too_many_cameras", "results for too many cameras")
    RESULTS_RECEIVED.labels(camera).inc()
    return web.Response(status=204)


async def get_results(request: web.Request) -> web.Response:
    camera = path_camera(request)
    body, age = await _newest_result(request, camera)
    headers = {"Cache-Control": "no-store", "X-Result-Age-Seconds": f"{age:.3f}"}
    return web.Response(body=body, content_type="application/json", headers=headers)


async def _newest_result(request: web.Request, camera: str) -> tuple[bytes, float]:
    frames = request.app[FRAMES]
    if isinstance(frames, RedisBackplane):
        try:
            newest = await frames.newest_result(camera)
        except BusUnavailable as exc:
            raise web.HTTPServiceUnavailable(text=f"{exc}\n") from None
    else:
        stored = request.app[RESULTS].newest.get(camera)
        newest = None if stored is None else (stored[1], time.monotonic() - stored[2])
    if newest is None:
        raise web.HTTPNotFound(text=f"no results for camera {camera} yet\n")
    return newest


def add_results_routes(app: web.Application) -> None:
    """POST/GET /cameras/{camera}/results; call from create_app after SETTINGS is set."""
    app[RESULTS] = ResultsStore(app[SETTINGS].gateway_max_cameras)
    app.router.add_post("/cameras/{camera}/results", post_results)
    app.router.add_get("/cameras/{camera}/results", get_results)
