"""Prometheus metrics of the viewer (names documented in docs/operations.md)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

STAGE_BUCKETS = (0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.5, 2.0)
LATENCY_BUCKETS = (0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020, 0.030, 0.050, 0.100, 0.250, 0.5, 1.0, 2.5)

FRAMES_RECEIVED = Counter(
    "framebus_frames_received_total", "Frames received from the transport.", ["camera", "transport"]
)
FRAMES_RENDERED = Counter(
    "framebus_frames_rendered_total", "600x600 frames made ready for browsers.", ["camera"]
)
FRAMES_DROPPED = Counter(
    "framebus_frames_dropped_total",
    "Frames not shown, by stage and reason.",
    ["camera", "stage", "reason"],
)
MALFORMED = Counter(
    "framebus_malformed_frames_total",
    "Transport entries that were not valid frames.",
    ["transport", "reason"],
)
STAGE_SECONDS = Histogram(
    "framebus_stage_seconds", "Time spent per frame in each stage.", ["stage"], buckets=STAGE_BUCKETS
)
END_TO_END = Histogram(
    "framebus_end_to_end_latency_seconds",
    "Capture timestamp to 600x600 frame ready, same host clock.",
    ["camera"],
    buckets=LATENCY_BUCKETS,
)
TRANSPORT_RECONNECTS = Counter(
    "framebus_transport_reconnects_total", "Transport reconnections after a failure.", ["transport"]
)
TRANSPORT_UP = Gauge("framebus_transport_up", "1 while the transport is connected.", ["transport"])
MJPEG_CLIENTS = Gauge("framebus_mjpeg_clients", "Open /stream.mjpg connections.", ["camera"])
MJPEG_REFUSED = Counter("framebus_mjpeg_refused_total", "Stream requests refused at VIEWER_MAX_CLIENTS.")
