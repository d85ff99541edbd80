"""One pipeline per camera: newest received frame -> render (executor) -> broadcast to browsers."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from services.viewer import metrics
from services.viewer.fanout import MjpegFanout
from services.viewer.render import RenderedFrame, Renderer, RenderTimings, no_signal_jpeg
from services.viewer.settings import ViewerSettings
from services.viewer.stats import RollingStats
from shared.health import Freshness
from shared.newest import Broadcast, NewestSlot
from shared.tasks import BackgroundTasks
from shared.wire import FrameMeta

log = logging.getLogger("framebus.viewer")

SIGNAL_CHECK_SECONDS = 1.0
# VIEWER_LATENCY_LOG is a benchmark tool: stop appending after this many lines (~20 MB).
LATENCY_LOG_MAX_LINES = 250_000
LATENCY_LOG_COLUMNS = "camera,seq,captured_ns,sent_ns,received_ns,ready_ns,decode_s,resize_s,reencode_s"


class CameraPipeline:
    def __init__(self, camera: str, settings: ViewerSettings, executor: ThreadPoolExecutor) -> None:
        self.camera = camera
        self.settings = settings
        self.frames: Broadcast[RenderedFrame] = Broadcast()
        self._metrics = metrics.CameraMetrics(camera, settings.transport)
        self.fanout = MjpegFanout(camera, self.frames)
        self.stats = RollingStats()
        self.freshness = Freshness()
        self.dropped: dict[str, int] = {}
        self.live = False
        self._executor = executor
        self._incoming: NewestSlot[tuple[FrameMeta, bytes, int]] = NewestSlot(
            lambda _: self.drop("render", "superseded")
        )
        self._renderer = Renderer(
            settings.viewer_width,
            settings.viewer_height,
            settings.viewer_fit,
            settings.viewer_jpeg_quality,
            settings.viewer_decode_reduced,
        )
        self._last_seq: int | None = None
        self._latency_log = LatencyLog(settings.viewer_latency_log) if settings.viewer_latency_log else None
        self._show_no_signal("waiting for the first frame")

    def receive(self, meta: FrameMeta, jpeg: bytes, superseded: int = 0) -> None:
        """Called by a transport follower with each frame it took; never blocks.

        ``superseded`` older frames were available but passed over for this one; any other
        jump in sequence numbers is a gap upstream (lost, or skipped before reaching us).
        """
        self._metrics.received.inc()
        if superseded:
            self.drop("receive", "superseded", superseded)
        if self._last_seq is not None and (gap := meta.seq - self._last_seq - 1 - superseded) > 0:
            self.drop("receive", "upstream_gap", gap)
        self._last_seq = meta.seq
        received_ns = time.time_ns()
        self._metrics.transport_seconds.observe(max(0.0, (received_ns - meta.sent_ns) / 1e9))
        self._incoming.put((meta, jpeg, received_ns))

    async def wait_for_demand(self) -> None:
        """Until the renderer has taken the last frame handed to it: the time to fetch the next."""
        await self._incoming.wait_empty()

    def drop(self, stage: str, reason: str, count: int = 1) -> None:
        metrics.FRAMES_DROPPED.labels(self.camera, stage, reason).inc(count)
        self.dropped[reason] = self.dropped.get(reason, 0) + count

    async def render_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            meta, jpeg, received_ns = await self._incoming.get()
            self._metrics.render_wait_seconds.observe((time.time_ns() - received_ns) / 1e9)
            rendered = await loop.run_in_executor(
                self._executor, self._renderer.render, jpeg, meta.width, meta.height
            )
            if rendered is None:
                metrics.MALFORMED.labels(self.settings.transport, "undecodable").inc()
                self.drop("render", "undecodable")
                continue
            output, timings = rendered
            ready_ns = time.time_ns()
            # Clocks of two hosts can disagree; a negative latency says nothing useful.
            latency = max(0.0, (ready_ns - meta.captured_ns) / 1e9)
            self._metrics.decode_seconds.observe(timings.decode)
            self._metrics.resize_seconds.observe(timings.resize)
            self._metrics.reencode_seconds.observe(timings.encode)
            self._metrics.end_to_end.observe(latency)
            self._metrics.rendered.inc()
            self.stats.record(latency)
            # Fresh means shown: a camera whose frames arrive but never decode has no signal.
            self.freshness.mark()
            if self._latency_log is not None:
                self._latency_log.write(self.camera, meta, received_ns, ready_ns, timings)
            if not self.live:
                log.info("camera %s: signal", self.camera)
            self.live = True
            self.frames.publish(RenderedFrame(output, meta.seq, True, ready_ns))

    async def watch_signal(self) -> None:
        """Replaces a stalled picture with a "no signal" card, refreshed every second."""
        while True:
            await asyncio.sleep(SIGNAL_CHECK_SECONDS)
            age = self.freshness.age()
            if age is not None and age > self.settings.frame_stale_seconds:
                if self.live:
                    log.warning("camera %s: no signal for %.1fs", self.camera, age)
                self.live = False
                self._show_no_signal(f"last frame {age:.0f}s ago")

    def close(self) -> None:
        if self._latency_log is not None:
            self._latency_log.close()

    def _show_no_signal(self, detail: str) -> None:
        jpeg = no_signal_jpeg(self.settings.viewer_width, self.settings.viewer_height, self.camera, detail)
        self.frames.publish(RenderedFrame(jpeg, 0, False, time.time_ns()))

    def summary(self) -> dict[str, object]:
        p50, p99 = self.stats.percentile(50), self.stats.percentile(99)
        age = self.freshness.age()
        return {
            "camera": self.camera,
            "live": self.live,
            "fps": round(self.stats.fps(), 2),
            "latency_ms": {
                "p50": None if p50 is None else round(p50 * 1000, 2),
                "p99": None if p99 is None else round(p99 * 1000, 2),
            },
            "age_seconds": None if age is None else round(age, 3),
            "dropped": dict(self.dropped),
            "seq": self._last_seq,
        }


class LatencyLog:
    """Per-frame timestamps as CSV lines, for `make bench` (VIEWER_LATENCY_LOG); bounded."""

    def __init__(self, path: str) -> None:
        # Line-buffered: a reader sees whole lines while the viewer runs; one small write per frame.
        self._file = open(path, "a", buffering=1)  # noqa: SIM115 - open for the viewer's life
        self._lines = 0
        if self._file.tell() == 0:
            self._file.write(LATENCY_LOG_COLUMNS + "\n")

    def write(self, camera: str, meta: FrameMeta, received_ns: int, ready_ns: int, t: RenderTimings) -> None:
        if self._lines >= LATENCY_LOG_MAX_LINES:
            return
        self._lines += 1
        self._file.write(
            f"{camera},{meta.seq},{meta.captured_ns},{meta.sent_ns},{received_ns},{ready_ns},"
            f"{t.decode:.6f},{t.resize:.6f},{t.encode:.6f}\n"
        )

    def close(self) -> None:
        self._file.close()


class CameraRegistry:
    """The cameras this viewer follows: pinned ones plus those discovered, at most a bound."""

    def __init__(self, settings: ViewerSettings, tasks: BackgroundTasks) -> None:
        self.settings = settings
        self.pipelines: dict[str, CameraPipeline] = {}
        self._tasks = tasks
        # Two threads: one camera renders serially, several cameras share both cores.
        self._executor = ThreadPoolExecutor(2, thread_name_prefix="render")
        self._full_logged = False

    def get(self, camera: str) -> CameraPipeline | None:
        return self.pipelines.get(camera)

    def ensure(self, camera: str) -> CameraPipeline | None:
        pipeline = self.pipelines.get(camera)
        if pipeline is not None:
            return pipeline
        if len(self.pipelines) >= self.settings.viewer_max_cameras:
            if not self._full_logged:
                log.warning(
                    "ignoring camera %s: VIEWER_MAX_CAMERAS=%d reached",
                    camera,
                    self.settings.viewer_max_cameras,
                )
                self._full_logged = True
            return None
        pipeline = self.pipelines[camera] = CameraPipeline(camera, self.settings, self._executor)
        self._tasks.start(f"render_{camera}", pipeline.render_forever)
        self._tasks.start(f"signal_{camera}", pipeline.watch_signal)
        self._tasks.start(f"fanout_{camera}", pipeline.fanout.run)
        log.info("following camera %s", camera)
        return pipeline

    def end_streams(self) -> None:
        """Shutdown: every broadcast ends, which releases each browser's handler."""
        self._tasks.begin_stop()  # the fan-outs return now; that is no crash
        for pipeline in self.pipelines.values():
            pipeline.frames.close()

    def close(self) -> None:
        self.end_streams()
        self._executor.shutdown(wait=False, cancel_futures=True)
        for pipeline in self.pipelines.values():
            pipeline.close()
