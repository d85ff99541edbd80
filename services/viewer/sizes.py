"""Snapshots at the size asked (``/snapshot.jpg?width=…``), from a bounded set of widths.

Each is rendered from the newest source frame on request, decoded at the reduced scale that
covers it, and cached: one render per frame per size, however many ask.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass

from services.viewer.render import Renderer
from services.viewer.settings import ViewerSettings
from shared.wire import FrameMeta

# Bounded, so a client cannot make the viewer keep a canvas and a cache entry per pixel width.
SNAPSHOT_WIDTHS = (160, 240, 320, 480, 640, 800, 960, 1280)


@dataclass(frozen=True, slots=True)
class SourceFrame:
    meta: FrameMeta
    jpeg: bytes


class SizedSnapshots:
    def __init__(self, settings: ViewerSettings, executor: Executor) -> None:
        self._settings = settings
        self._executor = executor
        self._renderers: dict[int, Renderer] = {}
        self._cache: dict[int, tuple[int, bytes]] = {}  # width -> (seq, jpeg)
        self._rendering: dict[int, asyncio.Future[bytes | None]] = {}

    def height_for(self, width: int) -> int:
        """The output's aspect ratio, kept (600x600 gives squares)."""
        return max(1, round(width * self._settings.viewer_height / self._settings.viewer_width))

    async def render(self, width: int, source: SourceFrame) -> bytes | None:
        """The frame at ``width``: cached for this frame, or rendered once (callers at the same
        moment share one render)."""
        cached = self._cache.get(width)
        if cached is not None and cached[0] == source.meta.seq:
            return cached[1]
        pending = self._rendering.get(width)
        if pending is not None:
            return await asyncio.shield(pending)
        future = self._rendering[width] = asyncio.get_running_loop().run_in_executor(
            self._executor, self._render, width, source
        )
        try:
            jpeg = await asyncio.shield(future)
        finally:
            self._rendering.pop(width, None)
        if jpeg is not None:
            self._cache[width] = (source.meta.seq, jpeg)
        return jpeg

    def _render(self, width: int, source: SourceFrame) -> bytes | None:
        renderer = self._renderers.get(width)
        if renderer is None:
            s = self._settings
            renderer = Renderer(
                width, self.height_for(width), s.viewer_fit, s.viewer_jpeg_quality, s.viewer_decode_reduced
            )
            self._renderers[width] = renderer
        rendered = renderer.render(source.jpeg, source.meta.width, source.meta.height)
        return None if rendered is None else rendered[0]
