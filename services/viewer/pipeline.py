"""One camera's pipeline: newest received frame -> render (executor) -> broadcast to browsers.

A pipeline only does the work; :class:`services.viewer.cameras.CameraPipelines` creates,
starts, expires and stops it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field

from services.viewer import metrics
from services.viewer.fanout import MjpegFanout
from services.viewer.latency_log import LatencyLog
from services.viewer.render import RenderedFrame, Renderer, RenderTimings, no_signal_jpeg
from services.viewer.settings import ViewerSettings
from services.viewer.stats import RollingStats
from shared.health import Freshness
from shared.newest import Broadcast, NewestSlot
from shared.wire import FrameMeta

log = logging.getLogger("framebus.viewer")

SIGNAL_CHECK_SECONDS = 1.0
# A camera whose render overran VIEWER_RENDER_BUDGET_SECONDS waits this many times the render's
# length before its next one: it keeps at most a fifth of a render thread, whatever it sends.
OVER_BUDGET_PENALTY = 4.0
# A camera stays "degraded" this long after its last render over budget.
DEGRADED_HOLD_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class CameraSummary:
    """What the page and the API show of a camera; computed in one place."""

    camera: str
    live: bool
    degraded: bool
    fps: float
    latency_ms: dict[str, float | None]
    age_seconds: float | None
    dropped: dict[str, int] = field(default_factory=dict)
    seq: int | None = None
    clients: int = 0


class CameraPipeline:
    def __init__(self, camera: str, settings: ViewerSettings, executor: Executor) -> None:
        self.camera = camera
        self.settings = settings
        self.frames: Broadcast[RenderedFrame] = Broadcast()
        self.fanout = MjpegFanout(camera, self.frames, settings.viewer_client_stall_seconds)
        self.stats = RollingStats()
        self.freshness = Freshness()
        self.dropped: dict[str, int] = {}
        self.live = False
        self._metrics = metrics.CameraMetrics(camera, settings.transport)
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
        self._created = time.monotonic()
        self._degraded_until = 0.0
        self._latency_log = LatencyLog(settings.viewer_latency_log) if settings.viewer_latency_log else None

    def receive(self, meta: FrameMeta, jpeg: bytes, superseded: int = 0) -> None:
        """Called by the follower with each frame it took; never blocks.

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
            rendered, took = await loop.run_in_executor(self._executor, self._render, jpeg, meta)
            if took > self.settings.viewer_render_budget_seconds:
                await self._over_budget(took)
            if rendered is None:
                metrics.MALFORMED.labels(self.settings.transport, "undecodable").inc()
                self.drop("render", "undecodable")
                continue
            output, timings = rendered
            ready_ns = time.time_ns()
            # Clocks of two hosts can disagree; a negative latency says nothing useful.
            latency = max(0.0, (ready_ns - meta.captured_ns) / 1e9)
            self._metrics.observe_render(timings, latency)
            self.stats.record(latency)
            # Fresh means shown: a camera whose frames arrive but never decode has no signal.
            self.freshness.mark()
            if self._latency_log is not None:
                self._latency_log.write(self.camera, meta, received_ns, ready_ns, timings)
            if not self.live:
                log.info("camera %s: signal", self.camera)
            self.live = True
            self.frames.publish(RenderedFrame(output, meta.seq, True, ready_ns))

    def _render(self, jpeg: bytes, meta: FrameMeta) -> tuple[tuple[bytes, RenderTimings] | None, float]:
        """Runs in the executor; also returns the CPU time the render took on its thread (time
        spent queued behind other cameras, or descheduled, is not this camera's cost)."""
        started = time.thread_time()
        rendered = self._renderer.render(jpeg, meta.width, meta.height)
        return rendered, time.thread_time() - started

    async def _over_budget(self, took: float) -> None:
        """Isolation: one camera's costly frames must not take the render threads from the others."""
        if not self.degraded:
            log.warning(
                "camera %s: a render took %.0f ms of CPU (VIEWER_RENDER_BUDGET_SECONDS=%g): "
                "rendering it less often",
                self.camera,
                took * 1000,
                self.settings.viewer_render_budget_seconds,
            )
        self._degraded_until = time.monotonic() + DEGRADED_HOLD_SECONDS
        self._metrics.over_budget.inc()
        self._metrics.degraded.set(1)
        await asyncio.sleep(took * OVER_BUDGET_PENALTY)

    @property
    def degraded(self) -> bool:
        return time.monotonic() < self._degraded_until

    async def watch_signal(self) -> None:
        """Shows a "waiting" card at once, then replaces a stalled picture with a "no signal" card,
        refreshed every second."""
        if self.frames.latest is None:
            await self._show_no_signal("waiting for the first frame")
        while True:
            await asyncio.sleep(SIGNAL_CHECK_SECONDS)
            self._metrics.degraded.set(self.degraded)
            age = self.freshness.age()
            if age is not None and age > self.settings.frame_stale_seconds:
                if self.live:
                    log.warning("camera %s: no signal for %.1fs", self.camera, age)
                self.live = False
                await self._show_no_signal(f"last frame {age:.0f}s ago")

    async def _show_no_signal(self, detail: str) -> None:
        width, height = self.settings.viewer_width, self.settings.viewer_height
        loop = asyncio.get_running_loop()
        jpeg = await loop.run_in_executor(self._executor, no_signal_jpeg, width, height, self.camera, detail)
        if not self.live:  # a frame may have arrived while the card was drawn
            self.frames.publish(RenderedFrame(jpeg, 0, False, time.time_ns()))

    def idle_seconds(self) -> float:
        """Since the last frame shown (or since the pipeline was created, before any)."""
        age = self.freshness.age()
        return time.monotonic() - self._created if age is None else age

    def end_streams(self) -> None:
        """Ends the broadcast: every browser's stream of this camera finishes."""
        self.frames.close()

    def close(self) -> None:
        if self._latency_log is not None:
            self._latency_log.close()

    def summary(self) -> CameraSummary:
        p50, p99 = self.stats.percentile(50), self.stats.percentile(99)
        age = self.freshness.age()
        return CameraSummary(
            camera=self.camera,
            live=self.live,
            degraded=self.degraded,
            fps=round(self.stats.fps(), 2),
            latency_ms={
                "p50": None if p50 is None else round(p50 * 1000, 2),
                "p99": None if p99 is None else round(p99 * 1000, 2),
            },
            age_seconds=None if age is None else round(age, 3),
            dropped=dict(self.dropped),
            seq=self._last_seq,
            clients=len(self.fanout.clients),
        )
