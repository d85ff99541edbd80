"""The capture pipeline: read the source (own thread) -> newest frame -> encode once -> sinks."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import cv2

from services.capture import metrics
from services.capture.demand import DemandWatcher
from services.capture.pacing import Pacer
from services.capture.settings import CaptureSettings
from services.capture.sinks import EncodedFrame, FrameSink
from services.capture.sources import FrameSource, open_source, parse_source
from shared.backoff import Backoff
from shared.health import CheckResult, Freshness
from shared.image import NDArray
from shared.newest import NewestSlot
from shared.wire import FrameMeta

log = logging.getLogger("framebus.capture")

# A read that outlives the source's own read timeout by this much is treated as a hang.
READ_WATCHDOG_GRACE_SECONDS = 3.0
# Unthrottled capture encodes this much faster than its fastest consumer's stated pace.
PACE_HEADROOM = 1.15


class SourceLost(Exception):
    pass


class CaptureService:
    def __init__(
        self, settings: CaptureSettings, sinks: list[FrameSink], demand: DemandWatcher | None = None
    ) -> None:
        self.settings = settings
        self.sinks = sinks
        self.demand = demand  # CAPTURE_ON_DEMAND: a trickle while no consumer wants frames
        self.camera = settings.camera_id
        self.freshness = Freshness()
        self.source_state = "not opened yet"
        self._spec = parse_source(settings.capture_source)
        self._captured: NewestSlot[tuple[NDArray, int]] = NewestSlot(self._count_unencoded)
        self._encoder_took = asyncio.Event()  # set when the encoder takes the captured frame
        self._encoder = ThreadPoolExecutor(1, thread_name_prefix="jpeg-encode")
        self._seq = 0
        self._encoded_at = float("-inf")  # monotonic start of the last encode
        # Per-frame metric children, bound once (labels() is a locked dict lookup per call).
        self._read_seconds = metrics.STAGE_SECONDS.labels("read")
        self._encode_seconds = metrics.STAGE_SECONDS.labels("encode")
        self._captured_total = metrics.FRAMES_CAPTURED.labels(self.camera)

    # --- readiness ---------------------------------------------------------------------------

    def source_readiness(self) -> CheckResult:
        if self.source_state != "open":
            return CheckResult(False, self.source_state)
        return self.freshness.check(self.settings.frame_stale_seconds)

    # --- tasks ----------------------------------------------------------------------------

    async def read_source(self) -> None:
        """Owns the source: open, read until lost, release, back off, reopen — forever."""
        backoff = Backoff()
        while True:
            # A fresh executor per opening: if a read hangs past every timeout we abandon its
            # thread (it ends when OpenCV gives up) instead of queueing behind it.
            executor = ThreadPoolExecutor(1, thread_name_prefix=f"source-{self.camera}")
            try:
                await self._read_until_lost(executor, backoff)
            except SourceLost as exc:
                self._source_down(str(exc))
            finally:
                # Not cancel_futures: the queued release() must still run once a hung read ends.
                executor.shutdown(wait=False)
            delay = backoff.next_delay()
            log.info("reopening source in %.0fs", delay)
            metrics.SOURCE_RECONNECTS.labels(self.camera).inc()
            await asyncio.sleep(delay)

    async def _read_until_lost(self, executor: ThreadPoolExecutor, backoff: Backoff) -> None:
        loop = asyncio.get_running_loop()
        # OpenCV's own open timeout does not cover every backend (devices): watch it too.
        watchdog = self.settings.capture_open_timeout_seconds + READ_WATCHDOG_GRACE_SECONDS
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
            # that arrives as the read completes, and this loop would then outlive SIGTERM.
            async with asyncio.timeout(watchdog):
                source = await loop.run_in_executor(executor, open_source, self.settings)
        except TimeoutError:
            raise SourceLost(f"opening CAPTURE_SOURCE ({self._spec.kind}) hung for {watchdog:.0f}s") from None
        except Exception as exc:  # any failure to open is a lost source: back off, retry
            raise SourceLost(f"cannot open CAPTURE_SOURCE ({self._spec.kind}): {exc}") from None
        try:
            self._source_up(source)
            backoff.reset()
            await self._pump(source, executor)
        finally:
            executor.submit(source.release)

    async def _pump(self, source: FrameSource, executor: ThreadPoolExecutor) -> None:
        loop = asyncio.get_running_loop()
        pacer = Pacer(self._rate_cap(source))
        watchdog = self.settings.capture_read_timeout_seconds + READ_WATCHDOG_GRACE_SECONDS
        while True:
            started = time.perf_counter()
            try:
                async with asyncio.timeout(watchdog):
                    frame = await loop.run_in_executor(executor, source.read)
            except TimeoutError:
                raise SourceLost(f"no frame for {watchdog:.0f}s (read hung)") from None
            except Exception as exc:  # a backend error mid-stream: reopen, as for a failed read
                raise SourceLost(f"read failed: {exc}") from None
            if frame is None:
                raise SourceLost("source ended or read failed")
            self._read_seconds.observe(time.perf_counter() - started)
            self._captured_total.inc()
            if self._spec.live:
                if not pacer.admit(time.monotonic()):
                    metrics.FRAMES_DROPPED.labels(self.camera, "capture", "fps_cap").inc()
                    continue
            elif wait := pacer.wait_time(time.monotonic()):
                await asyncio.sleep(wait)
            self.freshness.mark()
            # The source thread will overwrite a synthetic frame's buffer on the next read.
            owned = frame.copy() if self._spec.kind == "synthetic" else frame
            self._encoder_took.clear()
            self._captured.put((owned, time.time_ns()))
            if not self._spec.live:
                # A file or pattern loses nothing by waiting: read the next frame once the encoder
                # has taken this one. Unthrottled (CAPTURE_FPS=0) the reads otherwise spin a core
                # on frames that are only superseded (py-spy, `make bench` max rate).
                await self._encoder_took.wait()

    def _rate_cap(self, source: FrameSource) -> float | None:
        """CAPTURE_FPS if set; else a file or pattern plays at its own rate, and a live camera
        comes as it comes: capping it at its nominal rate would drop the frames that arrive
        together after a hiccup, before they get a sequence number (so no consumer sees a gap)."""
        if self.settings.capture_fps is not None:
            return self.settings.capture_fps
        return None if self._spec.live else source.nominal_fps

    async def encode_and_publish(self) -> None:
        """Encodes only the newest captured frame, once, and hands the bytes to every sink."""
        loop = asyncio.get_running_loop()
        params = [cv2.IMWRITE_JPEG_QUALITY, self.settings.jpeg_quality]
        # Unthrottled (CAPTURE_FPS=0), encode only what some transport can take now. A paced
        # source keeps its pace instead: a stalled transport must show as counted drops.
        paced_by_sinks = self.settings.capture_fps == 0
        while True:
            if paced_by_sinks:
                await self._a_sink_is_free()
                await self._at_consumer_pace()
            frame, captured_ns = await self._captured.get()
            self._encoder_took.set()
            if self.demand is not None and not self.demand.admit():
                metrics.FRAMES_DROPPED.labels(self.camera, "encode", "no_demand").inc()
                continue
            started = time.perf_counter()
            self._encoded_at = time.monotonic()
            ok, buffer = await loop.run_in_executor(self._encoder, cv2.imencode, ".jpg", frame, params)
            self._encode_seconds.observe(time.perf_counter() - started)
            if not ok:
                metrics.FRAMES_DROPPED.labels(self.camera, "encode", "encode_failed").inc()
                continue
            jpeg = buffer.tobytes()
            metrics.FRAME_BYTES.observe(len(jpeg))
            self._seq += 1
            height, width = frame.shape[:2]
            meta = FrameMeta(self.camera, self._seq, captured_ns, time.time_ns(), width, height)
            encoded = EncodedFrame(meta, jpeg)
            for sink in self.sinks:
                sink.slot.put(encoded)

    async def _a_sink_is_free(self) -> None:
        """Until some sink has taken the last frame: an unthrottled source then does not encode
        frames that every transport would only supersede."""
        waits = [asyncio.ensure_future(sink.slot.wait_empty()) for sink in self.sinks]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    async def _at_consumer_pace(self) -> None:
        """No faster than the fastest consumer takes frames while it says it cannot keep up,
        plus PACE_HEADROOM so it never waits for us (and can show it got faster)."""
        pace = self.demand.pace if self.demand is not None else None
        if pace:
            wait = self._encoded_at + 1.0 / (pace * PACE_HEADROOM) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)

    def close(self) -> None:
        self._encoder.shutdown(wait=False, cancel_futures=True)

    # --- state changes -------------------------------------------------------------------------

    def _source_up(self, source: FrameSource) -> None:
        self.source_state = "open"
        metrics.SOURCE_UP.labels(self.camera).set(1)
        log.info(
            "source opened: %s %dx%d at %s fps",
            self._spec.kind,
            source.width,
            source.height,
            f"{source.nominal_fps:g}" if source.nominal_fps else "its own",
        )

    def _source_down(self, reason: str) -> None:
        if self.source_state == "open":
            log.warning("source lost: %s", reason)
        else:
            log.warning("source unavailable: %s", reason)
        self.source_state = f"source down: {reason}"
        metrics.SOURCE_UP.labels(self.camera).set(0)

    def _count_unencoded(self, _frame: tuple[NDArray, int]) -> None:
        metrics.FRAMES_DROPPED.labels(self.camera, "encode", "superseded").inc()
