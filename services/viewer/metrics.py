"""Prometheus metrics of the viewer (names documented in docs/operations.md)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from services.viewer.render import RenderTimings

# Shared families, re-exported for this service's modules.
from shared.metrics import (
    FRAMES_DROPPED as FRAMES_DROPPED,
    FRAMES_RECEIVED as FRAMES_RECEIVED,
    MALFORMED as MALFORMED,
    STAGE_SECONDS as STAGE_SECONDS,
)

LATENCY_BUCKETS = (0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020, 0.030, 0.050, 0.100, 0.250, 0.5, 1.0, 2.5)

FRAMES_RENDERED = Counter(
    "framebus_frames_rendered_total", "600x600 frames made ready for browsers.", ["camera"]
)
END_TO_END = Histogram(
    "framebus_end_to_end_latency_seconds",
    "Capture timestamp to 600x600 frame ready, same host clock.",
    ["camera"],
    buckets=LATENCY_BUCKETS,
)
RENDERS_OVER_BUDGET = Counter(
    "framebus_renders_over_budget_total",
    "Renders that took longer than VIEWER_RENDER_BUDGET_SECONDS (the camera is then rendered less often).",
    ["camera"],
)
CAMERA_DEGRADED = Gauge(
    "framebus_camera_degraded",
    "1 while a camera's renders run over VIEWER_RENDER_BUDGET_SECONDS.",
    ["camera"],
)
CAMERA_WATCHED = Gauge(
    "framebus_camera_watched",
    "1 while a camera is watched, so rendered (see VIEWER_WATCH_LINGER_SECONDS).",
    ["camera"],
)
MJPEG_CLIENTS = Gauge("framebus_mjpeg_clients", "Open /stream.mjpg connections.", ["camera"])
MJPEG_REFUSED = Counter("framebus_mjpeg_refused_total", "Stream requests refused at VIEWER_MAX_CLIENTS.")
MJPEG_EVICTED = Counter(
    "framebus_mjpeg_evicted_total",
    "Stream clients dropped after accepting nothing for VIEWER_CLIENT_STALL_SECONDS.",
)


class CameraMetrics:
    """One camera's per-frame metric children, bound once: each labels() call costs a lock
    and a dict lookup, five times a frame otherwise (py-spy, `make bench` max rate)."""

    def __init__(self, camera: str, transport: str) -> None:
        self.received = FRAMES_RECEIVED.labels(camera, transport)
        self.rendered = FRAMES_RENDERED.labels(camera)
        self.over_budget = RENDERS_OVER_BUDGET.labels(camera)
        self.degraded = CAMERA_DEGRADED.labels(camera)
        self.watched = CAMERA_WATCHED.labels(camera)
        self.end_to_end = END_TO_END.labels(camera)
        self.transport_seconds = STAGE_SECONDS.labels("transport")
        self.render_wait_seconds = STAGE_SECONDS.labels("render_wait")
        self.decode_seconds = STAGE_SECONDS.labels("decode")
        self.resize_seconds = STAGE_SECONDS.labels("resize")
        self.reencode_seconds = STAGE_SECONDS.labels("reencode")

    def observe_render(self, timings: RenderTimings, latency_seconds: float) -> None:
        self.decode_seconds.observe(timings.decode)
        self.resize_seconds.observe(timings.resize)
        self.reencode_seconds.observe(timings.encode)
        self.end_to_end.observe(latency_seconds)
        self.rendered.inc()
