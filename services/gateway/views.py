"""Gateway HTTP handlers: validate the request, then hand over to the hub."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from services.gateway import metrics
from services.gateway.bus import BusUnavailable, GatewayFrames
from services.gateway.fanout import MAX_SUBSCRIBER_MESSAGE_BYTES, Subscriber
from services.gateway.hub import TooManyCameras
from services.gateway.settings import GatewaySettings
from shared.auth import grant_of
from shared.logs import RateLimitedLog
from shared.settings import CAMERA_ID_RULE, is_camera_id
from shared.wire import HEADER_AGE, HEADER_CAMERA, WireError, parse_headers, to_headers
from shared.wire_ws import WS_HEARTBEAT_SECONDS

log = logging.getLogger("framebus.gateway")
reject_log = RateLimitedLog(log)
T = TypeVar("T")

FRAMES = web.AppKey("frames", GatewayFrames)
SETTINGS = web.AppKey("settings", GatewaySettings)
WEBSOCKETS = web.AppKey("websockets", weakref.WeakSet[web.WebSocketResponse])


def _reject(status: Callable[..., web.HTTPException], reason: str, message: str) -> web.HTTPException:
    metrics.FRAMES_REJECTED.labels(reason).inc()
    reject_log.warning("rejected ingest (%s): %s", reason, message, key=reason)
    return status(text=message + "\n")


def _too_large(limit: int) -> Callable[..., web.HTTPException]:
    # Unlike the other 4xx classes, aiohttp's 413 needs the limit as an argument.
    return functools.partial(web.HTTPRequestEntityTooLarge, limit)


def _bad_request(message: str) -> web.HTTPException:
    return web.HTTPBadRequest(text=message + "\n")


def path_camera(request: web.Request, refuse: Callable[[str], web.HTTPException] = _bad_request) -> str:
    """The ``{camera}`` of the URL, or ``refuse`` (400 by default) when it is no valid camera id."""
    camera = request.match_info["camera"]
    if not is_camera_id(camera):
        raise refuse(CAMERA_ID_RULE)
    return camera


def _refuse_ingest(message: str) -> web.HTTPException:
    return _reject(web.HTTPBadRequest, "bad_camera", message)  # counted like every refused ingest


async def ingest_frame(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    started = time.perf_counter()
    camera = path_camera(request, _refuse_ingest)
    if request.content_type != "image/jpeg":
        raise _reject(web.HTTPUnsupportedMediaType, "content_type", "Content-Type must be image/jpeg")
    limit = settings.gateway_max_frame_bytes
    if request.content_length is not None and request.content_length > limit:
        # Refuse from the headers alone: the body is never read.
        raise _reject(_too_large(limit), "too_large", f"frame exceeds {limit} bytes")
    try:
        declared = parse_headers(camera, request.headers)
    except WireError as exc:
        raise _reject(web.HTTPBadRequest, "bad_headers", str(exc)) from None
    jpeg = await _read_body(request, limit, settings.gateway_body_timeout_seconds)
    try:
        meta = declared.with_jpeg(jpeg)
    except WireError as exc:  # exc.reason: not_jpeg, too_many_pixels or size_mismatch
        raise _reject(web.HTTPBadRequest, exc.reason, str(exc)) from None
    try:
        await request.app[FRAMES].accept(meta, jpeg)
    except TooManyCameras as exc:
        raise _reject(web.HTTPTooManyRequests, "too_many_cameras", str(exc)) from None
    except BusUnavailable as exc:
        raise _reject(web.HTTPServiceUnavailable, "backplane_down", str(exc)) from None
    metrics.STAGE_SECONDS.labels("ingest").observe(time.perf_counter() - started)
    return web.Response(status=204)


async def _read_body(request: web.Request, limit: int, body_seconds: float) -> bytes:
    # The app's client_max_size equals the limit, so read() stops as soon as it is passed.
    try:
        async with asyncio.timeout(body_seconds):
            return await request.read()
    except TimeoutError:
        raise _reject(
            web.HTTPRequestTimeout, "body_timeout", f"body not received within {body_seconds:g}s"
        ) from None
    except web.HTTPRequestEntityTooLarge:
        raise _reject(_too_large(limit), "too_large", f"frame exceeds {limit} bytes") from None


async def latest_frame(request: web.Request) -> web.Response:
    camera = path_camera(request)
    frame = await _bus_call(request.app[FRAMES].latest(camera))
    if frame is None:
        raise web.HTTPNotFound(text=f"no frame from camera {camera} yet\n")
    stale = request.app[SETTINGS].frame_stale_seconds
    if frame.age > stale:
        # A camera that stopped is not "latest" any more: its last frame may be hours old.
        raise web.HTTPNotFound(
            text=f"no frame from camera {camera} in the last {stale:g}s (FRAME_STALE_SECONDS); "
            f"the newest is {frame.age:.0f}s old\n"
        )
    headers = {
        **to_headers(frame.meta),
        HEADER_CAMERA: camera,
        HEADER_AGE: f"{frame.age:.3f}",
        "Cache-Control": "no-store",
    }
    return web.Response(body=frame.jpeg, content_type="image/jpeg", headers=headers)


async def list_cameras(request: web.Request) -> web.Response:
    grant = grant_of(request)  # the access middleware checked the token; list only what it may read
    cameras = [
        {
            "camera": entry.camera,
            "seq": frame.meta.seq if frame else None,
            "age_seconds": round(frame.age, 3) if frame else None,
            "width": frame.meta.width if frame else None,
            "height": frame.meta.height if frame else None,
        }
        for entry in await _bus_call(request.app[FRAMES].cameras())
        if grant.may_read(entry.camera)
        for frame in (entry.frame,)
    ]
    return web.json_response({"cameras": cameras})


async def _bus_call(call: Awaitable[T]) -> T:
    try:
        return await call
    except BusUnavailable as exc:
        raise web.HTTPServiceUnavailable(text=f"{exc}\n") from None


async def subscribe(request: web.Request) -> web.WebSocketResponse:
    """The camera's newest frames over a WebSocket (see services/gateway/fanout.py)."""
    camera = path_camera(request)
    ws = web.WebSocketResponse(
        compress=False, heartbeat=WS_HEARTBEAT_SECONDS, max_msg_size=MAX_SUBSCRIBER_MESSAGE_BYTES
    )
    await ws.prepare(request)
    request.app[WEBSOCKETS].add(ws)
    try:
        frames, settings = request.app[FRAMES], request.app[SETTINGS]
        subscriber = Subscriber(ws, request.transport, frames.hub, camera)
        if request.query.get("pull") == "1":
            subscriber.pull_mode()
        async with frames.watching(camera):
            await subscriber.serve(settings.frame_stale_seconds, settings.gateway_subscriber_stall_seconds)
    finally:
        request.app[WEBSOCKETS].discard(ws)
    return ws
