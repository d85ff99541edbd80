"""One camera's pipeline: newest received frame -> render (executor) -> broadcast to browsers.

A pipeline only does the work; :class:`services.viewer.cameras.CameraPipelines` creates,
starts, expires and stops it. It renders only while the camera is watched (demand.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import Executor

from services.viewer import metrics
from services.viewer.budget import RenderBudget, timed
from services.viewer.demand import Demand, OnAsk
from services.viewer.fanout import MjpegFanout, StreamClient
from services.viewer.latency_log import LatencyLog
from services.viewer.render import RenderedFrame, Renderer, no_signal_jpeg
from services.viewer.settings import ViewerSettings
from services.viewer.sizes import SizedSnapshots, SourceFrame
from services.viewer.stats import CameraSummary, RollingStats
from shared.health import CheckResult, Freshness
from shared.newest import Broadcast, BroadcastClosed, NewestSlot
from shared.sequence import count_gap, is_sequence_jump
from shared.wire import FrameMeta

log = logging.getLogger("framebus.viewer")

SIGNAL_CHECK_SECONDS = 1.0
# A picture this young is served as it is (a few frame intervals at any camera rate).
FRESH_PICTURE_SECONDS = 0.2
# A viewer that passed frames over within this window is behind: it states its pace, the
# frames it rendered over the same window. Behind, it renders as fast as it can, so that is
# what it can take; capped 15% above it, it stays (a little) behind and the pace holds.
PACE_WINDOW_SECONDS = 1.0


class CameraPipeline:
    def __init__(
        self, camera: str, settings: ViewerSettings, executor: Executor, on_ask: OnAsk | None = None
    ) -> None:
        self.camera = camera
        self.settings = settings
        self.frames: Broadcast[RenderedFrame] = Broadcast()
        self.fanout = MjpegFanout(camera, self.frames, settings.viewer_client_stall_seconds)
        self.demand = Demand(self.fanout.clients, settings.viewer_watch_linger_seconds, on_ask)
        self.stats = RollingStats()
        self.freshness = Freshness()  # of the newest frame shown
        self.upstream_freshness = Freshness()  # of the newest frame upstream, as discovery says
        self.dropped: dict[str, int] = {}
        self.live = False
        self._metrics = metrics.CameraMetrics(camera, settings.transport)
        self.budget = RenderBudget(
            camera, settings.viewer_render_budget_seconds, self._metrics.over_budget, self._metrics.degraded
        )
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
        self._sizes = SizedSnapshots(settings, executor)
        self._source: SourceFrame | None = None  # of the newest picture rendered
        self._last_seq: int | None = None
        self._resuming = False
        self._created = time.monotonic()
        self._behind_at = float("-inf")  # when frames were last passed over (we could not keep up)
        self._recent = RollingStats(window=PACE_WINDOW_SECONDS, samples=1)  # for the pace
        self._latency_log = LatencyLog(settings.viewer_latency_log) if settings.viewer_latency_log else None

    def receive(self, meta: FrameMeta, jpeg: bytes, superseded: int = 0) -> None:
        """Called by the follower with each frame it took; never blocks.

        ``superseded`` older frames were available but passed over for this one; any other
        jump in sequence numbers is a gap upstream (lost, or skipped before reaching us).
        Frames published while nobody watched are neither: they were not wanted.
        """
        self._metrics.received.inc()
        self.demand.frame_arrived()
        if self._resuming:
            self._resuming = False
        else:
            if superseded:
                self.drop("receive", "superseded", superseded)
                self._behind_at = time.monotonic()
            if is_sequence_jump(self._last_seq, meta.seq, superseded):
                self.drop("receive", "sequence_jump")  # a forged or reset seq: one event, not billions
            elif gap := count_gap(self._last_seq, meta.seq, superseded):
                self.drop("receive", "upstream_gap", gap)
        self._last_seq = meta.seq
        received_ns = time.time_ns()
        self._metrics.transport_seconds.observe(max(0.0, (received_ns - meta.sent_ns) / 1e9))
        self._incoming.put((meta, jpeg, received_ns))

    def pace(self) -> float:
        """Frames/s this viewer renders while it cannot keep up (it passed frames over in the
        last PACE_WINDOW_SECONDS), else 0: an unthrottled capture encodes just above it
        (shared/demand.py)."""
        if time.monotonic() - self._behind_at > PACE_WINDOW_SECONDS:
            return 0.0
        return self._recent.fps()

    async def wait_for_demand(self) -> None:
        """Until the renderer wants a frame: the feed's cue to fetch the next one."""
        await self.demand.frame_wanted()

    def add_stream_client(self, client: StreamClient) -> None:
        self.fanout.add(client)
        self.demand.client_joined()

    async def picture(self, wait_up_to: float) -> RenderedFrame | None:
        """The newest picture, if it is fresh (a watched camera's always is); else the next one
        rendered, waiting ``wait_up_to`` seconds at most: a snapshot of an idle camera waits for
        the render it has just asked for."""
        self.demand.ask()
        latest = self.frames.latest
        if latest is not None and time.time_ns() - latest.ready_ns <= FRESH_PICTURE_SECONDS * 1e9:
            return latest
        with contextlib.suppress(TimeoutError, BroadcastClosed):
            async with asyncio.timeout(wait_up_to):
                seen = self.frames.version
                while True:  # a "waiting" card drawn meanwhile is not the picture asked for
                    seen, picture = await self.frames.next_after(seen)
                    if picture.live:
                        return picture
        return self.frames.latest

    async def picture_at(self, width: int, wait_up_to: float) -> RenderedFrame | None:
        """:meth:`picture` at another width (one of SNAPSHOT_WIDTHS), rendered from the same
        source frame once per frame and cached; a "no signal" card stays as it is."""
        picture = await self.picture(wait_up_to)
        source = self._source
        if picture is None or not picture.live or source is None or source.meta.seq != picture.seq:
            return picture
        jpeg = await self._sizes.render(width, source)
        return picture if jpeg is None else RenderedFrame(jpeg, picture.seq, True, picture.ready_ns)

    def note_upstream_age(self, age: float | None) -> None:
        """Discovery's word on the newest frame upstream, for a camera nobody watches."""
        if age is not None:
            self.upstream_freshness.mark(ago=age)

    def drop(self, stage: str, reason: str, count: int = 1) -> None:
        metrics.FRAMES_DROPPED.labels(self.camera, stage, reason).inc(count)
        self.dropped[reason] = self.dropped.get(reason, 0) + count

    async def render_forever(self) -> None:
        await self._resume_when_watched()
        while True:
            if not self.demand.watched:
                await self._resume_when_watched()
            meta, jpeg, received_ns = await self._incoming.get()
            if self.demand.watched:
                self.demand.want_frame()  # fetch the next frame while this one renders
            await self._render(meta, jpeg, received_ns)

    async def _resume_when_watched(self) -> None:
        self._metrics.watched.set(0)
        await self.demand.wait_watched()
        self._metrics.watched.set(1)
        # A frame taken before the camera went idle is old now: start from the newest.
        self._incoming.clear()
        self._resuming = True
        self.demand.want_frame()

    async def _render(self, meta: FrameMeta, jpeg: bytes, received_ns: int) -> None:
        self._metrics.render_wait_seconds.observe((time.time_ns() - received_ns) / 1e9)
        loop = asyncio.get_running_loop()
        work = lambda: self._renderer.render(jpeg, meta.width, meta.height)  # noqa: E731
        rendered, took = await loop.run_in_executor(self._executor, timed, work)
        await self.budget.charge(took)
        if rendered is None:
            metrics.MALFORMED.labels(self.settings.transport, "undecodable").inc()
            self.drop("render", "undecodable")
            return
        output, timings = rendered
        self._source = SourceFrame(meta, jpeg)
        ready_ns = time.time_ns()
        # Clocks of two hosts can disagree; a negative latency says nothing useful.
        latency = max(0.0, (ready_ns - meta.captured_ns) / 1e9)
        self._metrics.observe_render(timings, latency)
        self.stats.record(latency)
        self._recent.record(latency)
        # Fresh means shown: a camera whose frames arrive but never decode has no signal.
        self.freshness.mark()
        if self._latency_log is not None:
            self._latency_log.write(self.camera, meta, received_ns, ready_ns, timings)
        if not self.live:
            log.info("camera %s: signal", self.camera)
        self.live = True
        self.frames.publish(RenderedFrame(output, meta.seq, True, ready_ns))

    async def watch_signal(self) -> None:
        """Shows a "waiting" card at once, then replaces a stalled picture with a "no signal" card,
        refreshed every second; an unwatched camera is live while discovery sees it publish."""
        if self.frames.latest is None:
            await self._show_no_signal("waiting for the first frame")
        while True:
            await asyncio.sleep(SIGNAL_CHECK_SECONDS)
            self.budget.report()
            if not self.demand.watched:
                self.live = self.fresh().ok
                continue
            age = self.freshness.age()
            if age is not None and age > self.settings.frame_stale_seconds:
                if self.live:
                    log.warning("camera %s: no signal for %.1fs", self.camera, age)
                self.live = False
                await self._show_no_signal(f"last frame {age:.0f}s ago")

    def fresh(self) -> CheckResult:
        """Shown recently, or (nobody watching) published upstream recently."""
        stale = self.settings.frame_stale_seconds
        shown = self.freshness.check(stale, f"newest frame of {self.camera}")
        if shown.ok or self.demand.watched:
            return shown
        return self.upstream_freshness.check(stale, f"newest frame of {self.camera} upstream")

    async def _show_no_signal(self, detail: str) -> None:
        width, height = self.settings.viewer_width, self.settings.viewer_height
        loop = asyncio.get_running_loop()
        jpeg = await loop.run_in_executor(self._executor, no_signal_jpeg, width, height, self.camera, detail)
        if not self.live:  # a frame may have arrived while the card was drawn
            self.frames.publish(RenderedFrame(jpeg, 0, False, time.time_ns()))

    def idle_seconds(self) -> float:
        """Since the last frame shown or seen upstream (or since the pipeline was created)."""
        ages = [age for age in (self.freshness.age(), self.upstream_freshness.age()) if age is not None]
        return min(ages) if ages else time.monotonic() - self._created

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
            watched=self.demand.watched,
            degraded=self.budget.degraded,
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
