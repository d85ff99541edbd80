"""Gateway HTTP handlers: validate the request, then hand over to the hub."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import weakref
from collections.abc import Callable

from aiohttp import WSCloseCode, WSMsgType, web

from services.gateway import metrics
from services.gateway.hub import CameraHub, TooManyCameras
from services.gateway.settings import GatewaySettings
from shared.auth import grant_of
from shared.logs import RateLimitedLog
from shared.newest import BroadcastClosed
from shared.settings import CAMERA_ID_RULE, is_camera_id
from shared.wire import (
    HEADER_AGE,
    HEADER_CAMERA,
    PULL_REQUEST,
    WS_HEARTBEAT_SECONDS,
    WireError,
    check_jpeg,
    from_headers,
    to_headers,
    to_ws_message,
)

log = logging.getLogger("framebus.gateway")
reject_log = RateLimitedLog(log)

HUB = web.AppKey("hub", CameraHub)
SETTINGS = web.AppKey("settings", GatewaySettings)
WEBSOCKETS = web.AppKey("websockets", weakref.WeakSet[web.WebSocketResponse])


def _reject(status: Callable[..., web.HTTPException], reason: str, message: str) -> web.HTTPException:
    metrics.FRAMES_REJECTED.labels(reason).inc()
    reject_log.warning("rejected ingest (%s): %s", reason, message)
    return status(text=message + "\n")


def _too_large(limit: int) -> Callable[..., web.HTTPException]:
    # Unlike the other 4xx classes, aiohttp's 413 needs the limit as an argument.
    return functools.partial(web.HTTPRequestEntityTooLarge, limit)


def _camera(request: web.Request) -> str:
    camera = request.match_info["camera"]
    if not is_camera_id(camera):
        raise web.HTTPBadRequest(text=CAMERA_ID_RULE + "\n")
    return camera


def _ingest_camera(request: web.Request) -> str:
    camera = request.match_info["camera"]
    if not is_camera_id(camera):
        raise _reject(web.HTTPBadRequest, "bad_camera", CAMERA_ID_RULE)
    return camera


async def ingest_frame(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    started = time.perf_counter()
    camera = _ingest_camera(request)
    if request.content_type != "image/jpeg":
        raise _reject(web.HTTPUnsupportedMediaType, "content_type", "Content-Type must be image/jpeg")
    limit = settings.gateway_max_frame_bytes
    if request.content_length is not None and request.content_length > limit:
        # Refuse from the headers alone: the body is never read.
        raise _reject(_too_large(limit), "too_large", f"frame exceeds {limit} bytes")
    try:
        meta = from_headers(camera, request.headers)
    except WireError as exc:
        raise _reject(web.HTTPBadRequest, "bad_headers", str(exc)) from None
    jpeg = await _read_body(request, limit, settings.gateway_body_timeout_seconds)
    try:
        check_jpeg(jpeg)
    except WireError as exc:
        raise _reject(web.HTTPBadRequest, "not_jpeg", str(exc)) from None
    try:
        request.app[HUB].store(meta, jpeg)
    except TooManyCameras as exc:
        raise _reject(web.HTTPTooManyRequests, "too_many_cameras", str(exc)) from None
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
    camera = _camera(request)
    feed = request.app[HUB].feed(camera)
    frame = feed.frames.latest if feed else None
    if frame is None:
        raise web.HTTPNotFound(text=f"no frame from camera {camera} yet\n")
    headers = {
        **to_headers(frame.meta),
        HEADER_CAMERA: camera,
        HEADER_AGE: f"{frame.age:.3f}",
        "Cache-Control": "no-store",
    }
    return web.Response(body=frame.jpeg, content_type="image/jpeg", headers=headers)


async def list_cameras(request: web.Request) -> web.Response:
    cameras = []
    grant = grant_of(request)  # the access middleware checked the token; list only what it may read
    for camera, feed in sorted(request.app[HUB].feeds.items()):
        if not grant.may_read(camera):
            continue
        frame = feed.frames.latest
        cameras.append(
            {
                "camera": camera,
                "seq": frame.meta.seq if frame else None,
                "age_seconds": round(frame.age, 3) if frame else None,
                "width": frame.meta.width if frame else None,
                "height": frame.meta.height if frame else None,
            }
        )
    return web.json_response({"cameras": cameras})


async def subscribe(request: web.Request) -> web.WebSocketResponse:
    """Sends each camera's newest frame; a slow subscriber skips frames, it never queues.

    With ``?pull=1`` a frame is sent only after the subscriber asked for one with a text
    message ``next``: a consumer slower than the camera then receives only frames it will use.
    """
    camera = _camera(request)
    wanted = asyncio.Event() if request.query.get("pull") == "1" else None
    ws = web.WebSocketResponse(compress=False, heartbeat=WS_HEARTBEAT_SECONDS, max_msg_size=4096)
    await ws.prepare(request)
    request.app[WEBSOCKETS].add(ws)
    sender = asyncio.create_task(_send_newest_frames(ws, request.app[HUB], camera, wanted))
    try:
        # Reading is what processes the peer's pings, close frame and requests.
        async for message in ws:
            if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break
            if wanted is not None and message.type == WSMsgType.TEXT and message.data == PULL_REQUEST:
                wanted.set()  # one pending request at most, however often it is asked
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        request.app[WEBSOCKETS].discard(ws)
        await ws.close()
    return ws


async def _send_newest_frames(
    ws: web.WebSocketResponse, hub: CameraHub, camera: str, wanted: asyncio.Event | None
) -> None:
    try:
        # A camera that has not sent a frame yet has no feed (nor metric labels): wait for it.
        feed = await hub.wait_for_feed(camera)
    except BroadcastClosed:
        await ws.close(code=WSCloseCode.GOING_AWAY)
        return
    metrics.SUBSCRIBERS.labels(camera).inc()
    log.info("subscriber joined camera %s", camera)
    seen = 0
    try:
        while not ws.closed:
            if wanted is not None:
                await wanted.wait()
                wanted.clear()
            version, frame = await feed.frames.next_after(seen)
            if seen and version - seen > 1:
                skipped = version - seen - 1
                metrics.FRAMES_DROPPED.labels(camera, "subscriber", "slow_subscriber").inc(skipped)
            seen = version
            # send_bytes waits while the socket is full, so a slow peer skips to the newest frame.
            await ws.send_bytes(to_ws_message(frame.meta, frame.jpeg))
    except (BroadcastClosed, ConnectionResetError):
        await ws.close(code=WSCloseCode.GOING_AWAY)
    finally:
        metrics.SUBSCRIBERS.labels(camera).dec()
        log.info("subscriber left camera %s", camera)
