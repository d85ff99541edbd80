"""The viewer's parts and their lifecycle in one place: follower, camera pipelines, their tasks."""

from __future__ import annotations

import cv2

from services.viewer.cameras import CameraPipelines
from services.viewer.follow import Follower, make_upstream
from services.viewer.settings import ViewerSettings
from shared.health import CheckResult, Readiness
from shared.memory import keep_frame_buffers_mapped
from shared.tasks import BackgroundTasks


class ViewerService:
    def __init__(self, settings: ViewerSettings) -> None:
        self.settings = settings
        self.follower = Follower(settings, make_upstream(settings))
        self.cameras = CameraPipelines(settings, self.follower.feed)
        self._tasks = BackgroundTasks()

    def add_checks(self, readiness: Readiness) -> None:
        readiness.add(self.follower.transport, self.follower.readiness)
        readiness.add("frames", self._default_camera_fresh)
        readiness.add("cameras", self.cameras.capacity)

    def start(self) -> None:
        cv2.setNumThreads(1)  # two render threads already use both cores
        keep_frame_buffers_mapped()
        self._tasks.start(
            f"follow_{self.follower.transport}", lambda: self.follower.discover_forever(self.cameras)
        )

    def end_streams(self) -> None:
        """The first step of shutdown: browsers' endless streams end, so their handlers return."""
        self.cameras.end_streams()

    async def stop(self) -> None:
        await self._tasks.stop()
        await self.cameras.stop()
        await self.follower.close()

    def _default_camera_fresh(self) -> CheckResult:
        camera = self.settings.camera_id
        pipeline = self.cameras.get(camera)
        if pipeline is None:
            return CheckResult(False, f"camera {camera} not followed")
        return pipeline.freshness.check(self.settings.frame_stale_seconds, f"newest frame of {camera}")
