"""The one owner of the viewer's camera pipelines: creates, starts, expires and stops them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from services.viewer.pipeline import CameraPipeline
from services.viewer.settings import ViewerSettings
from services.viewer.stats import CameraSummary
from shared.health import CheckResult
from shared.tasks import BackgroundTasks

log = logging.getLogger("framebus.viewer")

# How a camera's frames reach its pipeline (the follower's per-camera loop).
FeedPipeline = Callable[[CameraPipeline], Coroutine[Any, Any, None]]


class CameraPipelines:
    """Pinned cameras plus those discovered, at most VIEWER_MAX_CAMERAS.

    Each camera has four supervised tasks (feed, render, signal card, browser fan-out); they
    start, and end, together.
    """

    TASKS = ("feed", "render", "signal", "fanout")

    def __init__(self, settings: ViewerSettings, feed: FeedPipeline) -> None:
        self.settings = settings
        self._feed = feed
        self._pipelines: dict[str, CameraPipeline] = {}
        self._tasks = BackgroundTasks()
        # Two threads: one camera renders serially, several cameras share both cores.
        self._executor = ThreadPoolExecutor(2, thread_name_prefix="render")
        self._full_logged = False
        self.asked = asyncio.Event()  # someone asked for a camera: tell capture now

    def __len__(self) -> int:
        return len(self._pipelines)

    def get(self, camera: str) -> CameraPipeline | None:
        return self._pipelines.get(camera)

    def watched(self) -> list[str]:
        return [camera for camera, pipeline in self._pipelines.items() if pipeline.demand.watched]

    def paces(self) -> dict[str, float]:
        """Frames/s taken of each camera this viewer cannot keep up with (see CameraPipeline.pace)."""
        paces = {camera: pipeline.pace() for camera, pipeline in self._pipelines.items()}
        return {camera: pace for camera, pace in paces.items() if pace}

    def summaries(self) -> list[CameraSummary]:
        return [self._pipelines[camera].summary() for camera in sorted(self._pipelines)]

    def ensure(self, camera: str) -> CameraPipeline | None:
        """The camera's pipeline, created and started on first sight; None past the bound."""
        pipeline = self._pipelines.get(camera)
        if pipeline is not None:
            return pipeline
        if len(self._pipelines) >= self.settings.viewer_max_cameras:
            if not self._full_logged:
                limit = self.settings.viewer_max_cameras
                log.warning("ignoring camera %s: VIEWER_MAX_CAMERAS=%d reached", camera, limit)
                self._full_logged = True
            return None
        pipeline = CameraPipeline(camera, self.settings, self._executor, self.asked.set)
        self._pipelines[camera] = pipeline
        for name, work in zip(self.TASKS, self._work_of(pipeline), strict=True):
            self._tasks.start(f"{name}_{camera}", work)
        log.info("following camera %s", camera)
        return pipeline

    def _work_of(self, pipeline: CameraPipeline) -> list[Callable[[], Coroutine[Any, Any, None]]]:
        return [
            lambda: self._feed(pipeline),
            pipeline.render_forever,
            pipeline.watch_signal,
            pipeline.fanout.run,
        ]

    async def expire(self, camera: str) -> None:
        """Forgets a camera: its browsers' streams end and its tasks stop."""
        pipeline = self._pipelines.pop(camera, None)
        if pipeline is None:
            return
        pipeline.end_streams()
        await self._tasks.cancel(*(f"{name}_{camera}" for name in self.TASKS))
        pipeline.close()
        self._full_logged = False
        log.info("forgot camera %s", camera)

    async def expire_idle(self, keep: set[str]) -> None:
        """Forgets cameras silent for CAMERA_IDLE_SECONDS, except those in ``keep``."""
        for camera, pipeline in list(self._pipelines.items()):
            if camera not in keep and pipeline.idle_seconds() > self.settings.camera_idle_seconds:
                await self.expire(camera)

    def capacity(self) -> CheckResult:
        """Never unready for these, but says when the camera limit is reached or a camera is degraded."""
        used, limit = len(self._pipelines), self.settings.viewer_max_cameras
        degraded = sorted(camera for camera, pipeline in self._pipelines.items() if pipeline.budget.degraded)
        if degraded:
            return CheckResult(
                True, f"degraded (renders over VIEWER_RENDER_BUDGET_SECONDS): {', '.join(degraded)}"
            )
        if used >= limit:
            return CheckResult(
                True, f"following {used} cameras, the limit (VIEWER_MAX_CAMERAS): more are ignored"
            )
        return CheckResult(True, f"following {used} of {limit} cameras")

    def end_streams(self) -> None:
        """Shutdown, first step: every browser's stream ends, so its handler returns at once."""
        self._tasks.begin_stop()  # the fan-outs return now; that is no crash
        for pipeline in self._pipelines.values():
            pipeline.end_streams()

    async def stop(self) -> None:
        self.end_streams()
        await self._tasks.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)
        for pipeline in self._pipelines.values():
            pipeline.close()
