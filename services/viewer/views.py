"""Viewer HTTP handlers: the page, the MJPEG stream, snapshots and live figures."""

from __future__ import annotations

import logging
import weakref
from dataclasses import asdict
from importlib import resources

from aiohttp import HttpVersion11, web

from services.viewer import metrics, mjpeg
from services.viewer.fanout import StreamClient
from services.viewer.pipeline import CameraPipeline
from services.viewer.service import ViewerService
from services.viewer.settings import ViewerSettings
from services.viewer.sizes import SNAPSHOT_WIDTHS
from shared.auth import grant_of
from shared.logs import ChurnLog
from shared.settings import is_camera_id
from shared.wire import HEADER_CAMERA, HEADER_SEQ

log = logging.getLogger("framebus.viewer")
# Joins and leaves are worth a line each, but 500 connects in a second must not write 1000.
churn_log = ChurnLog(log, "viewer")

SERVICE = web.AppKey("service", ViewerService)
SETTINGS = web.AppKey("settings", ViewerSettings)
STREAMS = web.AppKey("streams", weakref.WeakSet[web.StreamResponse])

STATIC = resources.files("services.viewer") / "static"
NO_CACHE = {"Cache-Control": "no-store"}
# A snapshot of a camera nobody watched waits this long at most for the render it asks for
# (typically a frame interval and a render; the first one after start also warms OpenCV up).
SNAPSHOT_WAIT_SECONDS = 1.0


def _pipeline(request: web.Request) -> CameraPipeline:
    camera = request.query.get("camera") or request.app[SETTINGS].camera_id
    if not is_camera_id(camera):
        raise web.HTTPBadRequest(text="camera must match [A-Za-z0-9_-]{1,64}\n")
    pipeline = request.app[SERVICE].cameras.get(camera)
    if pipeline is None:
        raise web.HTTPNotFound(text=f"unknown camera {camera}\n")
    return pipeline


INDEX_HTML = (STATIC / "index.html").read_text()  # read once: the page is static


async def index(request: web.Request) -> web.Response:
    return web.Response(text=INDEX_HTML, content_type="text/html", headers=NO_CACHE)


async def stream_mjpeg(request: web.Request) -> web.StreamResponse:
    pipeline = _pipeline(request)
    streams = request.app[STREAMS]
    if len(streams) >= request.app[SETTINGS].viewer_max_clients:
        metrics.MJPEG_REFUSED.inc()
        raise web.HTTPServiceUnavailable(text="too many stream clients (VIEWER_MAX_CLIENTS)\n")
    browser = request.query.get("framing") == "browser"
    response = web.StreamResponse(headers={"Content-Type": mjpeg.CONTENT_TYPE, **NO_CACHE})
    streams.add(response)  # counted before the first await, so a burst cannot pass the limit
    gauge = metrics.MJPEG_CLIENTS.labels(pipeline.camera)
    gauge.inc()
    peer = request.remote or "?"
    churn_log.joined("viewer joined camera %s from %s (%d streams open)", pipeline.camera, peer, len(streams))
    client: StreamClient | None = None
    try:
        # Chunked on HTTP/1.1 by our choice, so the fan-out knows the framing it must write.
        chunked = request.version >= HttpVersion11
        if chunked:
            response.enable_chunked_encoding()
        await response.prepare(request)
        # The first write goes through aiohttp: it sends the buffered headers with it.
        await response.write(mjpeg.BROWSER_OPENING if browser else mjpeg.OPENING)
        if request.transport is None:
            return response  # the browser left before the headers went out
        client = StreamClient(request.transport, chunked, browser)
        pipeline.add_stream_client(client)
        # The camera's fan-out writes the frames; this handler only waits for the end
        # (the browser leaving cancels it; shutdown sets ``done``).
        await client.done.wait()
    finally:
        if client is not None:
            pipeline.fanout.remove(client)
        streams.discard(response)
        gauge.dec()
        churn_log.left("viewer left camera %s from %s (%d streams open)", pipeline.camera, peer, len(streams))
    return response


async def snapshot(request: web.Request) -> web.Response:
    pipeline = _pipeline(request)
    width = _snapshot_width(request)
    if width is None:
        frame = await pipeline.picture(wait_up_to=SNAPSHOT_WAIT_SECONDS)
    else:
        frame = await pipeline.picture_at(width, wait_up_to=SNAPSHOT_WAIT_SECONDS)
    if frame is None:  # the "waiting" card is drawn in the first milliseconds of a pipeline
        raise web.HTTPServiceUnavailable(text=f"no picture of camera {pipeline.camera} yet\n")
    headers = {
        HEADER_CAMERA: pipeline.camera,
        HEADER_SEQ: str(frame.seq),
        "X-Frame-Live": "1" if frame.live else "0",
        **NO_CACHE,
    }
    return web.Response(body=frame.jpeg, content_type="image/jpeg", headers=headers)


def _snapshot_width(request: web.Request) -> int | None:
    """``?width=``: None for the stream's own size, else one of SNAPSHOT_WIDTHS (400 otherwise)."""
    text = request.query.get("width")
    if text is None or text == str(request.app[SETTINGS].viewer_width):
        return None
    if not text.isdigit() or int(text) not in SNAPSHOT_WIDTHS:
        allowed = ", ".join(map(str, SNAPSHOT_WIDTHS))
        raise web.HTTPBadRequest(text=f"width must be one of {allowed} (or the stream's own)\n")
    return int(text)


async def stats(request: web.Request) -> web.Response:
    pipeline = _pipeline(request)
    pipeline.demand.ask()  # the page asks for the figures of the camera it shows
    settings = request.app[SETTINGS]
    return web.json_response(
        {
            **asdict(pipeline.summary()),
            "transport": settings.transport,
            "upstream_connected": request.app[SERVICE].follower.link.connected,
            "size": [settings.viewer_width, settings.viewer_height],
        },
        headers=NO_CACHE,
    )


async def cameras(request: web.Request) -> web.Response:
    grant = grant_of(request)  # the access middleware checked the token; list only what it may read
    summaries = [s for s in request.app[SERVICE].cameras.summaries() if grant.may_read(s.camera)]
    # fps and age let the grid page caption every tile from this one request.
    listing = [
        {"camera": s.camera, "live": s.live, "fps": s.fps, "age_seconds": s.age_seconds} for s in summaries
    ]
    default: str | None = request.app[SETTINGS].camera_id
    if default is not None and not grant.may_read(default):
        default = summaries[0].camera if summaries else None  # the page opens a camera it may show
    return web.json_response({"default": default, "cameras": listing}, headers=NO_CACHE)
