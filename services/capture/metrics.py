"""Prometheus metrics of the capture service (names documented in docs/operations.md)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

STAGE_BUCKETS = (0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.5, 2.0)

FRAMES_CAPTURED = Counter("framebus_frames_captured_total", "Frames read from the source.", ["camera"])
FRAMES_PUBLISHED = Counter(
    "framebus_frames_published_total", "Frames accepted by a transport.", ["camera", "transport"]
)
FRAMES_DROPPED = Counter(
    "framebus_frames_dropped_total",
    "Frames not published, by stage and reason.",
    ["camera", "stage", "reason"],
)
STAGE_SECONDS = Histogram(
    "framebus_stage_seconds", "Time spent per frame in each stage.", ["stage"], buckets=STAGE_BUCKETS
)
SOURCE_RECONNECTS = Counter(
    "framebus_source_reconnects_total", "Source (re)open attempts after a loss.", ["camera"]
)
TRANSPORT_RECONNECTS = Counter(
    "framebus_transport_reconnects_total", "Transport reconnections after a failure.", ["transport"]
)
SOURCE_UP = Gauge("framebus_source_up", "1 while the source is open and delivering.", ["camera"])
TRANSPORT_UP = Gauge("framebus_transport_up", "1 while the transport accepts frames.", ["transport"])
FRAME_BYTES = Histogram(
    "framebus_frame_bytes",
    "Size of each encoded JPEG.",
    buckets=(16e3, 32e3, 64e3, 128e3, 256e3, 512e3, 1e6, 2e6, 4e6),
)
