"""Metric families that several services export under the same name and meaning.

Defined once so that one process may import more than one service (tests, tools) without
registering a name twice. Service-specific metrics live in ``services/<name>/metrics.py``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

STAGE_BUCKETS = (0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.5, 2.0)

FRAMES_RECEIVED = Counter(
    "framebus_frames_received_total", "Frames received from a transport.", ["camera", "transport"]
)
FRAMES_DROPPED = Counter(
    "framebus_frames_dropped_total",
    "Frames not passed on, by the stage that dropped them and why.",
    ["camera", "stage", "reason"],
)
STAGE_SECONDS = Histogram(
    "framebus_stage_seconds", "Time spent per frame in each stage.", ["stage"], buckets=STAGE_BUCKETS
)
TRANSPORT_RECONNECTS = Counter(
    "framebus_transport_reconnects_total", "Transport reconnections after a failure.", ["transport"]
)
TRANSPORT_UP = Gauge("framebus_transport_up", "1 while the transport is connected.", ["transport"])
MALFORMED = Counter(
    "framebus_malformed_frames_total",
    "Transport entries that were not valid frames.",
    ["transport", "reason"],
)
