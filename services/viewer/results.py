"""The newest results of a camera, ready to draw over the page's live picture.

``GET /api/results?camera=X`` answers with the camera's newest result (read from the Redis
results stream, or from the gateway, like the frames), where the 600x600 letterbox puts the
source frame, and whether the result belongs to a frame close to the one on screen. Reads
upstream are cached briefly, so any number of open pages costs at most one read per camera
every CACHE_SECONDS.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from redis.exceptions import RedisError

from services.viewer.render import fit
from services.viewer.settings import ViewerSettings
from services.viewer.views import NO_CACHE, SERVICE, SETTINGS
from shared.logs import RateLimitedLog
from shared.redisconn import connect
from shared.results import FrameResult, ResultError, from_json, newest_result
from shared.settings import CAMERA_ID_RULE, is_camera_id
from shared.tokens import bearer_headers
from shared.transport import describe_error

log = logging.getLogger("framebus.viewer.results")
fetch_log = RateLimitedLog(log)

CACHE_SECONDS = 0.1
FETCH_TIMEOUT_SECONDS = 1.0
# A result is drawn over the picture only when its frame is this close to the one shown
# (by seq: the algorithm usually trails the viewer by a frame or two) and it is recent.
MATCH_FRAMES = 15
MATCH_MAX_AGE_SECONDS = 2.0


@dataclass
class _Cached:
    fetched: float
    result: FrameResult | None
    error: str | None


class ResultsSource:
    """Reads the newest result per camera upstream (Redis or gateway), cached for CACHE_SECONDS."""

    def __init__(self, settings: ViewerSettings) -> None:
        self.settings = settings
        self._redis = (
            connect(settings.redis_url, socket_timeout=FETCH_TIMEOUT_SECONDS)
            if settings.transport == "redis"
            else None
        )
        self._session: aiohttp.ClientSession | None = None
        # A gateway with AUTH_SECRET wants a read token, as for the frames (services/viewer/follow.py).
        self._auth = bearer_headers(settings.auth_secret_value, None, ["read:*"], subject="viewer")
        self._cache: dict[str, _Cached] = {}

    async def newest(self, camera: str) -> _Cached:
        cached = self._cache.get(camera)
        if cached is not None and time.monotonic() - cached.fetched < CACHE_SECONDS:
            return cached
        try:
            result, error = await self._fetch(camera), None
        except (RedisError, OSError, TimeoutError, aiohttp.ClientError, ResultError) as exc:
            result, error = None, describe_error(exc)
            fetch_log.warning("camera %s: cannot read results: %s", camera, error)
        # One entry per camera the viewer follows (VIEWER_MAX_CAMERAS bounds them).
        self._cache[camera] = cached = _Cached(time.monotonic(), result, error)
        return cached

    async def _fetch(self, camera: str) -> FrameResult | None:
        if self._redis is not None:
            newest = await newest_result(self._redis, camera)
            return None if newest is None else newest[0]
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_SECONDS)
            self._session = aiohttp.ClientSession(timeout=timeout)
        url = f"{self.settings.gateway_url}/cameras/{camera}/results"
        async with self._session.get(url, headers=self._auth()) as response:
            if response.status == 404:
                return None
            response.raise_for_status()
            return from_json(await response.read(), camera)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
        if self._session is not None:
            await self._session.close()


SOURCE = web.AppKey("results_source", ResultsSource)


def describe(result: FrameResult | None, shown_seq: int | None, settings: ViewerSettings) -> dict[str, Any]:
    """The page's view of a result: where to draw it, and whether it fits the shown frame."""
    if result is None:
        return {"result": None, "matches": False, "shown_seq": shown_seq}
    age = max(0, time.time_ns() - result.published_ns) / 1e9
    matches = (
        shown_seq is not None and abs(shown_seq - result.seq) <= MATCH_FRAMES and age <= MATCH_MAX_AGE_SECONDS
    )
    placement = fit(
        result.width, result.height, settings.viewer_width, settings.viewer_height, settings.viewer_fit
    )
    return {
        "result": result.to_dict(),
        "matches": matches,
        "shown_seq": shown_seq,
        "latency_seconds": round(result.latency_seconds, 4),
        "age_seconds": round(age, 3),
        "placement": {
            "x": placement.x,
            "y": placement.y,
            "scale_x": placement.width / result.width,
            "scale_y": placement.height / result.height,
            "width": settings.viewer_width,
            "height": settings.viewer_height,
        },
    }


async def results_view(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    camera = request.query.get("camera") or settings.camera_id
    if not is_camera_id(camera):
        raise web.HTTPBadRequest(text=CAMERA_ID_RULE + "\n")
    pipeline = request.app[SERVICE].cameras.get(camera)
    if pipeline is None:
        raise web.HTTPNotFound(text=f"unknown camera {camera}\n")
    pipeline.demand.ask()  # the overlay draws over the picture: the camera is watched
    cached = await request.app[SOURCE].newest(camera)
    shown = pipeline.frames.latest
    shown_seq = shown.seq if shown is not None and shown.live else None
    body = {"camera": camera, "error": cached.error, **describe(cached.result, shown_seq, settings)}
    return web.json_response(body, headers=NO_CACHE)


def add_results_routes(app: web.Application) -> None:
    """GET /api/results; call from create_app after SETTINGS is set."""
    app.router.add_get("/api/results", results_view)

    async def run_source(app: web.Application) -> AsyncIterator[None]:
        source = app[SOURCE] = ResultsSource(app[SETTINGS])
        yield
        await source.close()

    app.cleanup_ctx.append(run_source)
