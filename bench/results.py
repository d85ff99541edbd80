"""What the bench measures, as types. The JSON file is ``dataclasses.asdict`` of a :class:`BenchRun`
(the same keys as before these were typed, so older result files read the same)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # these modules import this one; their results stay next to their logic
    from bench.capacity import CapacityResult
    from bench.on_demand import OnDemandResult


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
    # For the readers cost curve (bench/curves.py). Defaults: result files older than them load.
    latency_p50_ms: float | None = None  # cam0's rendered frames, capture -> 600x600 ready
    latency_p95_ms: float | None = None
    cpu_cores_busy: float | None = None  # capture + redis-server + viewer, CPU-s/s (readers not)
    cpu_cores: dict[str, float] = field(default_factory=dict)  # CPU-s/s by process, readers too


@dataclass(frozen=True, kw_only=True)
class CameraStep:
    cameras: int
    ok: bool
    gap_drop_fraction: float
    min_camera_source_fps: float
    delivered_fps_total: float
    cpu_utilisation: float  # of all the machine's cores
    drops: dict[str, float]
    # For the cameras cost curve (bench/curves.py). Defaults: result files older than them load.
    latency_p50_ms: float | None = None  # the watched camera's (cam0), capture -> 600x600 ready
    latency_p95_ms: float | None = None
    cpu_cores_busy: float | None = None  # all framebus processes, CPU-s/s
    cpu_cores: dict[str, float] = field(default_factory=dict)  # by process, captures summed


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
class WatchStep:
    """One measurement with ``watched`` of the cameras watched; CPU in CPU-s/s (cores busy)."""

    watched: int
    cpu_cores_busy: float  # all framebus processes (the readers stand for browsers elsewhere)
    cpu_cores: dict[str, float]  # by process, captures summed as "capture"
    latency_p50_ms: float | None  # the watched cameras' frames pooled; None with none watched
    latency_p95_ms: float | None
    rendered_fps: float  # all cameras: W x 15 when every watched frame is shown
    gap_drop_fraction: float | None  # frames of watched cameras lost (sequence gaps)
    drops: dict[str, float]
    seconds: float


@dataclass(frozen=True, kw_only=True)
class WatchersResult:
    cameras: int
    fps_per_camera: float
    size: str
    steps: list[WatchStep] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class RtspTransport:
    """One transport fed by the RTSP camera, plus what framebus_case does not see."""

    framebus: FramebusResult
    # Frames shown / frames capture read from the camera: the sequence-gap fraction times the
    # share of read frames that got a sequence number (capture's fps_cap and superseded drops
    # happen before numbering, so no gap shows them).
    delivered_of_read: float | None
    pre_sequence_drops: float
    camera_cpu_cores: float | None  # the RTSP server over the same window: the camera's, not framebus's
    read_wait_ms: float | None  # capture's read stage (mean): mostly waiting for the next frame


@dataclass(frozen=True, kw_only=True)
class RtspResult:
    width: int
    height: int
    nominal_fps: float  # the rate the camera is configured for
    pattern: str
    # CPU ms per frame to read and decode the stream as capture does (capture's own open_source),
    # measured alone in the bench process before the case; and the rate that probe read.
    source_decode_ms: float | None
    probe_fps: float
    floor: Floor | None  # the 1080p codec floor the ratios use (testsrc2 + noise clip)
    transports: list[RtspTransport]
    seconds: float


@dataclass(frozen=True, kw_only=True)
class ReplicaStep:
    """One (replicas, subscribers) measurement and whether it was carried."""

    replicas: int
    subscribers: int
    carried: bool
    reason: str  # why it was not carried ("" when it was)
    seconds: float
    failed_connects: int
    open_at_end: int
    camera_fps: float  # frames the capture published per second in the window
    expected_frames: int  # the camera's frames in the window, as the subscribers' processes saw them
    min_frames: int  # distinct frames per subscriber, in the window
    duplicate_frames: int  # received twice, all subscribers together (a gateway fault)
    median_frames: float
    min_frame_fraction: float  # of expected_frames
    median_frame_fraction: float
    latency_p50_ms: float | None  # capture handed the frame to the bus -> subscriber read it
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    gateway_cpu_per_second: list[float]  # CPU-seconds per second, per replica in use
    capture_cpu_per_second: float
    redis_cpu_per_second: float
    load_cpu_per_second: float  # the subscribers' processes together (not framebus's)
    cpu_utilisation: float  # every process above / all cores
    drops: dict[str, float]  # gateway counters in the window: "<stage>/<reason>" drops, "evicted",
    # "sequence_restarts"


@dataclass(frozen=True, kw_only=True)
class ReplicasResult:
    camera: str
    fps: float
    load_generators: int
    cpus: int | None
    replica_cpu_budget: float | None  # cores each gateway replica may use (None: unbudgeted)
    no_budget_because: str | None  # why there was no budget
    quick: bool
    min_frame_fraction: float
    latency_slack_ms: float
    baseline_p50_ms: float | None  # 1 replica, the first step
    latency_bound_ms: float | None  # baseline + slack: a carried step's p50 is at most this
    carried: dict[str, int]  # replica count ("1", "2") -> most subscribers carried
    bounded: dict[str, bool]  # False: no step failed above it (the carried figure is a lower bound)
    ratio: float | None  # carried["2"] / carried["1"]
    ratio_at_least: float | None  # carried["2"] / the fewest subscribers 1 replica failed
    steps: list[ReplicaStep]
    seconds: float


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
    watchers: WatchersResult | None = None
    rtsp: RtspResult | None = None
    replicas: ReplicasResult | None = None
    capacity: CapacityResult | None = None
    on_demand: OnDemandResult | None = None
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self), indent=1) + "\n")
