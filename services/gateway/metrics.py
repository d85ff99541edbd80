"""Prometheus metrics of the gateway (names documented in docs/operations.md)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FRAMES_RECEIVED = Counter("framebus_frames_received_total", "Frames accepted on ingest.", ["camera"])
FRAMES_REJECTED = Counter(
    "framebus_frames_rejected_total", "Ingest requests refused, by reason (HTTP 4xx).", ["reason"]
)
FRAMES_DROPPED = Counter(
    "framebus_frames_dropped_total",
    "Frames a subscriber skipped because it was slower than the camera.",
    ["camera", "stage", "reason"],
)
SEQUENCE_RESTARTS = Counter(
    "framebus_sequence_restarts_total",
    "Cameras whose sequence number went backwards (producer restart).",
    ["camera"],
)
SUBSCRIBERS = Gauge("framebus_subscribers", "Open WebSocket subscribers.", ["camera"])
INGEST_SECONDS = Histogram(
    "framebus_stage_seconds",
    "Time spent per frame in each stage.",
    ["stage"],
    buckets=(0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.5, 2.0),
)
