"""Prometheus metrics of the gateway (names documented in docs/operations.md)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

# Shared families, re-exported for this service's modules.
from shared.metrics import (
    FRAMES_DROPPED as FRAMES_DROPPED,
    FRAMES_RECEIVED as FRAMES_RECEIVED,
    STAGE_SECONDS as STAGE_SECONDS,
)

FRAMES_REJECTED = Counter(
    "framebus_frames_rejected_total", "Ingest requests refused, by reason (HTTP 4xx).", ["reason"]
)
SEQUENCE_RESTARTS = Counter(
    "framebus_sequence_restarts_total",
    "Cameras whose sequence number went backwards (producer restart).",
    ["camera"],
)
SUBSCRIBERS = Gauge("framebus_subscribers", "Open WebSocket subscribers.", ["camera"])
SUBSCRIBERS_EVICTED = Counter(
    "framebus_subscribers_evicted_total",
    "WebSocket subscribers closed because they stopped reading (GATEWAY_SUBSCRIBER_STALL_SECONDS).",
    ["camera"],
)
