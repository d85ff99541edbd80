"""The viewer's parts and their lifecycle in one place: follower, camera pipelines, their tasks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sized

import cv2

from services.viewer.cameras import CameraPipelines
from services.viewer.follow import Follower, make_upstream
from services.viewer.settings import ViewerSettings
from shared.demand import DemandSignal
from shared.health import CheckResult, Readiness
from shared.memory import keep_frame_buffers_mapped
from shared.tasks import BackgroundTasks
from shared.upstream_redis import RedisUpstream

DEMAND_CHECK_SECONDS = 0.1


class ViewerService:
    def __init__(self, settings: ViewerSettings) -> None:
        self.settings = settings
        self.follower = Follower(settings, make_upstream(settings))
        self.cameras = CameraPipelines(settings, self.follower.feed)
        self._tasks = BackgroundTasks()

    def add_checks(self, readiness: Readiness, streams: Sized) -> None:
        readiness.add(self.follower.transport, self.follower.readiness)
        readiness.add("frames", self._default_camera_fresh)
        readiness.add("cameras", self.cameras.capacity)
        readiness.add("clients", lambda: self._clients_check(streams))

    def start(self) -> None:
        cv2.setNumThreads(1)  # two render threads already use both cores
        keep_frame_buffers_mapped()
        self._tasks.start(
            f"follow_{self.follower.transport}", lambda: self.follower.discover_forever(self.cameras)
        )
        if isinstance(self.follower.upstream, RedisUpstream):
            signal = DemandSignal(self.follower.upstream.client)
            self._tasks.start("signal_demand", lambda: self._signal_demand(signal))

    async def _signal_demand(self, signal: DemandSignal) -> None:
        """Tells capture which cameras are watched (CAPTURE_ON_DEMAND; checked often, so a new
        watcher brings full rate back within a frame or two) and how fast it takes those it
        cannot keep up with (an unthrottled capture then encodes no faster)."""
        while True:
            # Cleared before the refresh, so an ask that arrives during it is not lost.
            self.cameras.asked.clear()
            await signal.refresh(self.cameras.watched(), self.cameras.paces())
            # A new watcher wakes this at once: capture on demand is back at full rate within
            # a frame of the ask, not a check interval later.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DEMAND_CHECK_SECONDS):
                    await self.cameras.asked.wait()

    def end_streams(self) -> None:
        """The first step of shutdown: browsers' endless streams end, so their handlers return."""
        self.cameras.end_streams()

    async def stop(self) -> None:
        await self._tasks.stop()
        await self.cameras.stop()
        await self.follower.close()

    def _clients_check(self, streams: Sized) -> CheckResult:
        """Never unready (new browsers get 503 at the limit), but says when the limit is near."""
        used, limit = len(streams), self.settings.viewer_max_clients
        near = " - near VIEWER_MAX_CLIENTS, new streams will get 503" if used >= 0.9 * limit else ""
        return CheckResult(True, f"{used} of {limit} stream clients{near}")

    def _default_camera_fresh(self) -> CheckResult:
        camera = self.settings.camera_id
        pipeline = self.cameras.get(camera)
        if pipeline is None:
            return CheckResult(False, f"camera {camera} not followed")
        return pipeline.fresh()
