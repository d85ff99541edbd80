"""What the bench measures, as types. The JSON file is ``dataclasses.asdict`` of a :class:`BenchRun`
(the same keys as before these were typed, so older result files read the same)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Floor:
    """Median seconds per frame of the JPEG work alone, in one process (bench/floor.py)."""

    encode_s: float
    decode_s: float
    resize_s: float
    reencode_s: float
    render_s: float
    latency_floor_s: float
    max_fps_floor: float
    jpeg_bytes: float


@dataclass(frozen=True, kw_only=True)
class Latency:
    """Capture -> 600x600 ready, ms: percentiles, and the median of each stage (None: no frames)."""

    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    encode_ms: float | None  # capture: newest-slot wait + JPEG encode + handing to the sink
    transport_ms: float | None  # sent by capture -> taken by the viewer
    render_ms: float | None  # viewer: render wait + decode + resize + re-encode


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """Frames shown vs sequence numbers spanned (gaps: frames lost on the way)."""

    shown: int
    spanned: int
    gap_drop_fraction: float
    min_camera_source_fps: float


@dataclass(frozen=True, kw_only=True)
class Counts:
    """Counters read from /metrics between two scrapes (all captures summed)."""

    captured: float
    rendered: float
    bytes_sum: float
    bytes_count: float
    drops: dict[str, float]  # "<process>:<stage>/<reason>" -> frames


@dataclass(kw_only=True)
class PipelineResult:
    """One pipeline measured end to end (framebus or a classic one)."""

    case: str
    transport: str
    size: str
    mode: str  # "camera" (paced at the source rate) or "max" (as fast as it goes)
    fps: float
    latency: Latency
    cpu_ms_per_frame: dict[str, float | None]  # per process, and "total"
    cpu_cores_busy: float
    peak_rss_mib: dict[str, float]
    fps_timeline: list[float]
    latency_ms_samples: list[float]
    seconds: float


@dataclass(kw_only=True)
class FramebusResult(PipelineResult):
    source_fps: float
    delivered_fraction: float  # frames shown / frames the capture encoded in the window
    delivery: Delivery
    bytes_per_frame: int | None
    drops: dict[str, float]
    api_stats: dict[str, Any]  # the viewer's /api/stats (JSON) at the end of the window


@dataclass(frozen=True, kw_only=True)
class FanoutResult:
    case: str
    readers: int
    viewer_cpu_per_second: float
    viewer_cpu_ms_per_frame: float | None
    readers_cpu_per_second: float
    fps: float
    min_parts_per_reader: int | None
    drops: dict[str, float]
    seconds: float


@dataclass(frozen=True, kw_only=True)
class CameraStep:
    cameras: int
    ok: bool
    gap_drop_fraction: float
    min_camera_source_fps: float
    delivered_fps_total: float
    cpu_utilisation: float
    drops: dict[str, float]


@dataclass(frozen=True, kw_only=True)
class CamerasResult:
    fps_per_camera: float
    carried: int
    steps: list[CameraStep]


@dataclass(frozen=True, kw_only=True)
class LibraryResult:
    """The client library (issue 13), by examples/algorithm/measure_client.py."""

    p50_added_ms: float  # framebus.subscribe's p50 publish -> delivery minus a raw XREAD reader's
    pool_one_worker: int  # frames a CPU-bound algorithm handled alone ...
    pool_two_workers: int  # ... and as two workers in one consumer group, in the same time
    pool_ratio: float


@dataclass(frozen=True, kw_only=True)
class Machine:
    cpus: int | None
    platform: str
    node: str


@dataclass(kw_only=True)
class BenchRun:
    started: str
    machine: Machine
    quick: bool
    floor: dict[str, Floor] = field(default_factory=dict)  # by size ("720p")
    framebus: list[FramebusResult] = field(default_factory=list)
    classic: list[PipelineResult] = field(default_factory=list)
    fanout: list[FanoutResult] = field(default_factory=list)
    cameras: CamerasResult | None = None
    library: LibraryResult | None = None
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self), indent=1) + "\n")
