"""Prometheus metrics of the capture service (names documented in docs/operations.md)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Shared families, re-exported for this service's modules.
from shared.metrics import (
    FRAMES_DROPPED as FRAMES_DROPPED,
    STAGE_SECONDS as STAGE_SECONDS,
)

FRAMES_CAPTURED = Counter("framebus_frames_captured_total", "Frames read from the source.", ["camera"])
FRAMES_PUBLISHED = Counter(
    "framebus_frames_published_total", "Frames accepted by a transport.", ["camera", "transport"]
)
SOURCE_RECONNECTS = Counter(
    "framebus_source_reconnects_total", "Source (re)open attempts after a loss.", ["camera"]
)
SOURCE_UP = Gauge("framebus_source_up", "1 while the source is open and delivering.", ["camera"])
FRAME_BYTES = Histogram(
    "framebus_frame_bytes",
    "Size of each encoded JPEG.",
    buckets=(16e3, 32e3, 64e3, 128e3, 256e3, 512e3, 1e6, 2e6, 4e6),
)
CONSUMER_PACE = Gauge(
    "framebus_capture_consumer_pace_fps",
    "Frames/s the fastest consumer takes while it cannot keep up (0: it keeps up); "
    "an unthrottled capture (CAPTURE_FPS=0) encodes a little above it.",
    ["camera"],
)
