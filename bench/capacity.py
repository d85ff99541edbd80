"""Capacity of the Redis bus: how many cameras x subscribers one host carries (the bench host: 2 cores).

The bus alone is measured, not the codecs: a publisher process appends pre-encoded 720p JPEGs
(the bench clip's frames at capture's q80) at 15 fps per camera through capture's own write path
(:class:`shared.stream_writer.StreamWriter`), and subscriber processes read them through the
newest-wins reader a Python consumer gets from ``framebus.subscribe`` (bench/bus_load.py). A
subscriber's latency is its receive time minus the frame's ``sent_ns`` (same host clock).

Each cell (cameras x subscribers per camera) runs twice: against one redis-server, and against a
Redis Cluster of 3 masters (no replicas, so both backends do the same work per frame; a replica
would add a second copy of every write). Everything runs on this one host, so the cluster shows
the cost of cluster routing, not the gain of more hosts, and the load generator competes with
Redis for the same cores: its CPU is reported beside Redis's.

A cell is *carried* when every subscriber received >= 99% of the frames published in the window,
every camera published >= 99% of its 15 fps, and the p99 latency over all subscribers is under
100 ms. A cell with more cameras and more subscribers than one already not carried is not run
(it would only load the host for a known answer); the table says so.

``python -m bench.capacity [--quick]`` runs it alone and prints the table and its markdown.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import redis

from bench.clip import CACHE, clip_path, load_frames
from bench.procs import CLK_TCK, CpuWindow, Proc, ServiceDied, hold, wait_for
from bench.redis_backends import (
    CLUSTER_MASTERS,
    Backend,
    ClusterRedis,
    CommandCounts,
    OneRedis,
    flush,
    started,
)
from bench.verdicts import Verdicts, ms_text
from shared.percentiles import percentile

ROOT = Path(__file__).resolve().parents[1]
FPS = 15.0
JPEG_QUALITY = 80  # capture's JPEG_QUALITY default
JPEG_COUNT = 4  # distinct frames the publisher cycles through
FULL_CAMERAS = (1, 4, 8, 16)
FULL_SUBSCRIBERS = (1, 4, 16)
QUICK_CAMERAS = (1, 8)
QUICK_SUBSCRIBERS = (1, 4)
# At 15 fps, 64 subscribers are ~1000 frames/s (~120 MB/s) into one Python process: well within
# one core, so the load generator is not what limits a cell, with few processes on 2 cores.
SUBSCRIBERS_PER_PROCESS = 64
READY_TIMEOUT_SECONDS = 60.0
BACKEND_LABELS = {"redis": "one Redis", "cluster": f"{CLUSTER_MASTERS}-master cluster"}


@dataclass(frozen=True, kw_only=True)
class Rule:
    """When a cell is carried."""

    min_delivered: float = 0.99  # every subscriber, of the frames published in the window
    min_published: float = 0.99  # every camera, of FPS x window
    max_p99_ms: float = 100.0  # over every frame every subscriber received

    def failures(self, delivered: float, published: float, p99_ms: float | None) -> list[str]:
        """Why a cell is not carried (empty: carried)."""
        reasons = []
        if delivered < self.min_delivered:
            reasons.append(f"a subscriber got {delivered:.1%} of frames")
        if published < self.min_published:
            reasons.append(f"a camera published {published:.1%} of {FPS:g} fps")
        if p99_ms is None or p99_ms >= self.max_p99_ms:
            shown = "none" if p99_ms is None else f"{p99_ms:.0f} ms"
            reasons.append(f"p99 {shown} >= {self.max_p99_ms:g} ms")
        return reasons


RULE = Rule()


@dataclass(frozen=True)
class Timing:
    warm: float  # seconds after every load process is ready, before measuring
    measure: float  # seconds measured per cell
    grace: float  # after the window, for the window's last frames to arrive


# 7 s at 15 fps is 105 frames per subscriber: the 99% rule tolerates one lost frame (quick: none).
FULL_TIMING = Timing(warm=1.5, measure=7.0, grace=0.5)
QUICK_TIMING = Timing(warm=1.0, measure=3.0, grace=0.5)


@dataclass(frozen=True, kw_only=True)
class CapacityCell:
    """One backend x cameras x subscribers-per-camera measurement (or why there is none)."""

    backend: str  # "redis" or "cluster"
    cameras: int
    subscribers_per_camera: int
    status: str  # "carried", "not carried", "not run" (dominates a cell not carried), "failed"
    carried: bool
    reason: str = ""  # why not carried / not run / failed
    delivered_min: float | None = None  # the worst subscriber's share of the published frames
    delivered_mean: float | None = None
    published_min: float | None = None  # the slowest camera's frames / (FPS x window)
    p50_ms: float | None = None  # sent_ns -> handed to the subscriber, all subscribers' frames
    p99_ms: float | None = None
    max_ms: float | None = None
    delivered_fps: float | None = None  # frames handed to all subscribers, per second
    redis_cores: float | None = None  # CPU-seconds per second, summed over the cluster's nodes
    publisher_cores: float | None = None
    subscriber_cores: float | None = None
    other_cores: float | None = None  # the rest of the host (not ours) during the window
    load_processes: int = 0
    write_errors: int = 0
    read_errors: int = 0
    redis_calls_per_second: dict[str, float] = field(default_factory=dict)
    seconds: float | None = None  # the measured window


@dataclass(frozen=True, kw_only=True)
class CapacityResult:
    fps: float
    jpeg_bytes: int
    width: int
    height: int
    cpus: int
    cluster_masters: int
    rule: Rule
    warm_seconds: float
    measure_seconds: float
    subscribers_per_process: int
    cells: tuple[CapacityCell, ...]
    seconds: float  # the whole case, wall


# --- the frames ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Jpegs:
    paths: tuple[Path, ...]
    size: int  # median bytes
    width: int
    height: int


def make_jpegs(workdir: Path, width: int = 1280, height: int = 720) -> Jpegs:
    """A few of the bench clip's frames as capture would encode them, written once per run."""
    workdir.mkdir(parents=True, exist_ok=True)
    frames = load_frames(clip_path(width, height, 10), JPEG_COUNT)
    paths, sizes = [], []
    for index, image in enumerate(frames):
        ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise RuntimeError("cv2.imencode failed")
        path = workdir / f"frame-{index}.jpg"
        path.write_bytes(buffer.tobytes())
        paths.append(path)
        sizes.append(path.stat().st_size)
    return Jpegs(tuple(paths), sorted(sizes)[len(sizes) // 2], width, height)


# --- one cell ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    backend: str
    cameras: int
    subscribers: int  # per camera

    @property
    def names(self) -> list[str]:
        return [f"cam{index}" for index in range(self.cameras)]

    @property
    def label(self) -> str:
        return f"{self.backend}-{self.cameras}x{self.subscribers}"


def subscriber_groups(cameras: Sequence[str], per_camera: int, per_process: int) -> list[list[str]]:
    """Every subscriber (one camera id each) dealt round-robin over as few processes as hold
    ``per_process`` each, so every process gets a share of every camera."""
    # Camera-major, then dealt: a camera's subscribers spread over the processes.
    everyone = [camera for camera in cameras for _ in range(per_camera)]
    count = max(1, math.ceil(len(everyone) / per_process))
    return [everyone[index::count] for index in range(count)]


@dataclass
class Load:
    """The load processes of one cell, with their ready and output files."""

    celldir: Path
    publisher: Proc | None = None
    subscribers: list[Proc] = field(default_factory=list)

    def procs(self) -> list[Proc]:
        return [*self.subscribers, *([self.publisher] if self.publisher else [])]

    def files(self, proc: Proc) -> tuple[Path, Path]:
        return self.celldir / f"{proc.name}.ready", self.celldir / f"{proc.name}.json"

    def start(self, name: str, argv: list[str]) -> Proc:
        ready, out = self.celldir / f"{name}.ready", self.celldir / f"{name}.json"
        full = [sys.executable, "-m", "bench.bus_load", *argv, "--ready", str(ready), "--out", str(out)]
        return Proc(name, full, {**os.environ, "PYTHONPATH": str(ROOT)}, self.celldir)

    def wait_ready(self, procs: list[Proc], also: list[Proc]) -> None:
        def ready() -> bool:
            for proc in [*procs, *also]:
                proc.check()
            return all(self.files(proc)[0].exists() for proc in procs)

        wait_for(ready, READY_TIMEOUT_SECONDS, "load processes ready")

    def stop(self) -> None:
        # SIGTERM to all first, then wait for each: they write their records and close in parallel.
        for proc in self.procs():
            with contextlib.suppress(ProcessLookupError):
                if proc.running:
                    proc.popen.send_signal(signal.SIGTERM)
        for proc in self.procs():
            with contextlib.suppress(Exception):
                proc.stop()

    def output(self, proc: Proc) -> dict[str, Any]:
        path = self.files(proc)[1]
        if not path.exists():
            raise ServiceDied(
                f"{proc.name} wrote no results (exit {proc.popen.returncode})\n{proc.log_tail()}"
            )
        return dict(json.loads(path.read_text()))


def start_load(load: Load, spec: Spec, url: str, jpegs: Jpegs, backend_procs: list[Proc]) -> None:
    """Every load process at once (their start-up is most of a cell's overhead), until each
    subscriber has had an answer from Redis and each camera has published. Frames sent before
    then are outside the window anyway: it opens after the warm-up."""
    groups = subscriber_groups(spec.names, spec.subscribers, SUBSCRIBERS_PER_PROCESS)
    for index, group in enumerate(groups):
        argv = ["subscribe", "--url", url, *(arg for camera in group for arg in ("--camera", camera))]
        load.subscribers.append(load.start(f"subscribers{index}", argv))
    argv = ["publish", "--url", url, "--cameras", ",".join(spec.names), "--fps", str(FPS)]
    argv += [arg for path in jpegs.paths for arg in ("--jpeg", str(path))]
    load.publisher = load.start("publisher", argv)
    load.wait_ready(load.procs(), backend_procs)


def busy_host_seconds() -> float:
    """CPU-seconds the whole host has been busy (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    guest = sum(values[8:10])  # already counted in user/nice
    return (sum(values) - guest - idle) / CLK_TCK


@dataclass
class Measured:
    """The window and what the processes spent in it."""

    start_ns: int
    end_ns: int
    cpu: CpuWindow
    host_busy: float
    calls: dict[str, int]


def measure_window(backend: Backend, load: Load, timing: Timing) -> Measured:
    alive = [*backend.procs(), *load.procs()]
    hold(timing.warm, alive)
    cpu = CpuWindow(alive)
    counts = CommandCounts(backend)
    try:
        calls_before, host_before = counts.now(), busy_host_seconds()
        cpu.start()
        start_ns = time.time_ns()
        hold(timing.measure, alive)
        end_ns = time.time_ns()
        cpu.stop()
        host_busy = busy_host_seconds() - host_before
        calls_after = counts.now()
    finally:
        counts.close()
    hold(timing.grace, alive)
    calls = {name: calls_after[name] - calls_before.get(name, 0) for name in calls_after}
    return Measured(start_ns, end_ns, cpu, host_busy, calls)


def run_cell(backend: Backend, spec: Spec, jpegs: Jpegs, timing: Timing, workdir: Path) -> CapacityCell:
    flush(backend)
    load = Load(workdir / spec.label)
    load.celldir.mkdir(parents=True, exist_ok=True)
    try:
        start_load(load, spec, backend.url, jpegs, backend.procs())
        measured = measure_window(backend, load, timing)
    finally:
        load.stop()
    assert load.publisher is not None
    published = parse_published(load.output(load.publisher))
    received = [log for proc in load.subscribers for log in parse_received(load.output(proc))]
    return cell_from(spec, published, received, measured, load)


# --- figures (pure) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    sent: Mapping[str, Sequence[tuple[int, int]]]  # camera -> (seq, sent_ns)
    errors: int


@dataclass(frozen=True)
class Received:
    camera: str
    frames: Sequence[tuple[int, int, int]]  # (seq, sent_ns, received_ns)
    errors: int


def parse_published(payload: Mapping[str, Any]) -> Published:
    cameras = payload["cameras"]
    sent = {camera: [(int(s), int(t)) for s, t in log["sent"]] for camera, log in cameras.items()}
    return Published(sent, sum(int(log["errors"]) for log in cameras.values()))


def parse_received(payload: Mapping[str, Any]) -> list[Received]:
    return [
        Received(log["camera"], [(int(q), int(s), int(r)) for q, s, r in log["frames"]], int(log["errors"]))
        for log in payload["subscribers"]
    ]


@dataclass(frozen=True)
class Figures:
    delivered_min: float
    delivered_mean: float
    published_min: float
    latencies_ms: list[float]


def figures(
    published: Published, received: Sequence[Received], start_ns: int, end_ns: int, fps: float
) -> Figures:
    """Delivery and latency of the frames *sent* inside [start_ns, end_ns]: a frame is judged by
    when it was published, so one arriving just after the window still counts, and one sent
    before it is not counted against a subscriber that started late."""
    in_window = {
        camera: {seq: sent for seq, sent in frames if start_ns <= sent <= end_ns}
        for camera, frames in published.sent.items()
    }
    slots = fps * (end_ns - start_ns) / 1e9
    published_min = min((len(seqs) / slots for seqs in in_window.values()), default=0.0)
    shares: list[float] = []
    latencies: list[float] = []
    for log in received:
        wanted = in_window.get(log.camera, {})
        got = {seq: got_ns - sent for seq, sent, got_ns in log.frames if seq in wanted}
        shares.append(len(got) / len(wanted) if wanted else 0.0)
        latencies.extend(ns / 1e6 for ns in got.values())
    return Figures(
        delivered_min=min(shares, default=0.0),
        delivered_mean=sum(shares) / len(shares) if shares else 0.0,
        published_min=min(1.0, published_min),
        latencies_ms=latencies,
    )


def _cores(cpu: CpuWindow, names: Sequence[str]) -> float:
    return round(sum(cpu.seconds[name] for name in names) / cpu.wall, 3)


def cell_from(
    spec: Spec, published: Published, received: Sequence[Received], measured: Measured, load: Load
) -> CapacityCell:
    fig = figures(published, received, measured.start_ns, measured.end_ns, FPS)
    p99 = percentile(fig.latencies_ms, 99)
    reasons = RULE.failures(fig.delivered_min, fig.published_min, p99)
    cpu = measured.cpu
    ours = sum(cpu.seconds.values())
    load_names = [proc.name for proc in load.procs()]
    publisher = [name for name in load_names if name == "publisher"]
    subscribers = [name for name in load_names if name != "publisher"]
    redis_names = [name for name in cpu.seconds if name not in load_names]
    return CapacityCell(
        backend=spec.backend,
        cameras=spec.cameras,
        subscribers_per_camera=spec.subscribers,
        status="not carried" if reasons else "carried",
        carried=not reasons,
        reason="; ".join(reasons),
        delivered_min=round(fig.delivered_min, 4),
        delivered_mean=round(fig.delivered_mean, 4),
        published_min=round(fig.published_min, 4),
        p50_ms=_round(percentile(fig.latencies_ms, 50)),
        p99_ms=_round(p99),
        max_ms=_round(max(fig.latencies_ms, default=None)),
        delivered_fps=round(len(fig.latencies_ms) / cpu.wall, 1),
        redis_cores=_cores(cpu, redis_names),
        publisher_cores=_cores(cpu, publisher),
        subscriber_cores=_cores(cpu, subscribers),
        other_cores=round(max(0.0, measured.host_busy - ours) / cpu.wall, 3),
        load_processes=len(load_names),
        write_errors=published.errors,
        read_errors=sum(log.errors for log in received),
        redis_calls_per_second={
            name: round(calls / cpu.wall, 1) for name, calls in sorted(measured.calls.items()) if calls
        },
        seconds=round(cpu.wall, 2),
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def blocking_cell(spec: Spec, cells: Sequence[CapacityCell]) -> CapacityCell | None:
    """A cell of the same backend, no bigger in either direction, that was not carried: ``spec``
    is at least as much load, so running it would tell nothing new."""
    for cell in cells:
        if (
            cell.backend == spec.backend
            and cell.status == "not carried"
            and cell.cameras <= spec.cameras
            and cell.subscribers_per_camera <= spec.subscribers
        ):
            return cell
    return None


def not_run(spec: Spec, status: str, reason: str) -> CapacityCell:
    return CapacityCell(
        backend=spec.backend,
        cameras=spec.cameras,
        subscribers_per_camera=spec.subscribers,
        status=status,
        carried=False,
        reason=reason,
    )


# --- the case ----------------------------------------------------------------------------------


def grid(quick: bool) -> list[tuple[int, int]]:
    cameras, subscribers = (QUICK_CAMERAS, QUICK_SUBSCRIBERS) if quick else (FULL_CAMERAS, FULL_SUBSCRIBERS)
    return [(c, s) for c in cameras for s in subscribers]


def estimated_seconds(quick: bool) -> float:
    """For a progress estimate: every cell run, ~3 s of process start-up each, two backends."""
    timing = QUICK_TIMING if quick else FULL_TIMING
    per_cell = timing.warm + timing.measure + timing.grace + 3.0
    return 2 * len(grid(quick)) * per_cell + 10.0


def backend_cells(
    backend: Backend, jpegs: Jpegs, timing: Timing, quick: bool, workdir: Path, say: Callable[[str], None]
) -> list[CapacityCell]:
    cells: list[CapacityCell] = []
    for cameras, subscribers in grid(quick):
        spec = Spec(backend.key, cameras, subscribers)
        cells.append(one_cell(backend, spec, cells, jpegs, timing, workdir))
        say(describe(cells[-1]))
    return cells


def one_cell(
    backend: Backend, spec: Spec, done: Sequence[CapacityCell], jpegs: Jpegs, timing: Timing, workdir: Path
) -> CapacityCell:
    blocker = blocking_cell(spec, done)
    if blocker is not None:
        reason = f"{blocker.cameras} x {blocker.subscribers_per_camera} already not carried"
        return not_run(spec, "not run", reason)
    dead = [proc.name for proc in backend.procs() if not proc.running]
    if dead:
        return not_run(spec, "failed", f"{', '.join(dead)} exited earlier")
    try:
        return run_cell(backend, spec, jpegs, timing, workdir)
    except (ServiceDied, TimeoutError, OSError, ValueError, redis.RedisError) as exc:
        return not_run(spec, "failed", f"{type(exc).__name__}: {str(exc).splitlines()[0]}")


def describe(cell: CapacityCell) -> str:
    head = (
        f"capacity {BACKEND_LABELS[cell.backend]}, {cell.cameras} cameras x "
        f"{cell.subscribers_per_camera} subscribers"
    )
    if cell.seconds is None:
        return f"{head}: {cell.status} ({cell.reason})"
    return (
        f"{head}: {cell.status}{f' ({cell.reason})' if cell.reason else ''}, worst subscriber "
        f"{_pct(cell.delivered_min)}, p50/p99 {ms_text(cell.p50_ms)}/{ms_text(cell.p99_ms)} ms, CPU cores "
        f"redis {_num(cell.redis_cores)} pub {_num(cell.publisher_cores)} sub {_num(cell.subscriber_cores)}"
    )


def capacity_case(workdir: Path, quick: bool, say: Callable[[str], None]) -> CapacityResult:
    """Every cell of the grid against one redis-server, then against a 3-master cluster."""
    started_at = time.monotonic()
    timing = QUICK_TIMING if quick else FULL_TIMING
    workdir.mkdir(parents=True, exist_ok=True)
    jpegs = make_jpegs(workdir / "frames")
    say(f"capacity: {len(jpegs.paths)} 720p JPEGs of ~{jpegs.size / 1024:.0f} KiB at {FPS:g} fps per camera")
    makers: dict[str, Callable[[], Backend]] = {
        "redis": lambda: OneRedis(workdir / "redis"),
        "cluster": lambda: ClusterRedis(workdir / "cluster"),
    }
    cells: list[CapacityCell] = []
    for key, make in makers.items():
        try:
            with started(make) as backend:
                cells += backend_cells(backend, jpegs, timing, quick, workdir, say)
        except (ServiceDied, TimeoutError, OSError, redis.RedisError) as exc:
            # The backend itself would not start: every one of its cells says so.
            reason = f"{BACKEND_LABELS[key]} did not start: {str(exc).splitlines()[0]}"
            cells += [not_run(Spec(key, c, s), "failed", reason) for c, s in grid(quick)]
            say(f"!! capacity: {reason}")
    return CapacityResult(
        fps=FPS,
        jpeg_bytes=jpegs.size,
        width=jpegs.width,
        height=jpegs.height,
        cpus=os.cpu_count() or 1,
        cluster_masters=CLUSTER_MASTERS,
        rule=RULE,
        warm_seconds=timing.warm,
        measure_seconds=timing.measure,
        subscribers_per_process=SUBSCRIBERS_PER_PROCESS,
        cells=tuple(cells),
        seconds=round(time.monotonic() - started_at, 1),
    )


# --- output ------------------------------------------------------------------------------------


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _rule_text(result: CapacityResult) -> str:
    rule = result.rule
    return (
        f"carried = every subscriber >= {rule.min_delivered:.0%} of frames, every camera >= "
        f"{rule.min_published:.0%} of {result.fps:g} fps, p99 < {rule.max_p99_ms:g} ms"
    )


def capacity_rows(result: CapacityResult) -> list[str]:
    """The printed table: one line per cell."""
    head = (
        f"{'backend':18} {'cams':>4} {'subs':>4} {'frames/s':>8}  {'status':11} {'worst':>6} "
        f"{'p50':>6} {'p99':>6}  {'CPU cores redis/pub/sub':>23} {'other':>5}  note"
    )
    title = (
        f"capacity: {result.width}x{result.height} JPEG ~{result.jpeg_bytes / 1024:.0f} KiB, "
        f"{_rule_text(result)}; all on one {result.cpus}-core host"
    )
    return [title, head, "-" * len(head), *(_row(cell) for cell in result.cells)]


def _row(cell: CapacityCell) -> str:
    cores = f"{_num(cell.redis_cores)}/{_num(cell.publisher_cores)}/{_num(cell.subscriber_cores)}"
    fps = "-" if cell.delivered_fps is None else f"{cell.delivered_fps:.0f}"
    return (
        f"{BACKEND_LABELS[cell.backend]:18} {cell.cameras:4d} {cell.subscribers_per_camera:4d} {fps:>8}  "
        f"{cell.status:11} {_pct(cell.delivered_min):>6} "
        f"{ms_text(cell.p50_ms):>6} {ms_text(cell.p99_ms):>6}  "
        f"{cores:>23} {_num(cell.other_cores):>5}  {'; '.join(filter(None, [cell.reason, routing(cell)]))}"
    )


def routing(cell: CapacityCell) -> str:
    """What cluster routing cost the clients, from the nodes' command counts: redis-py asks a
    node for an XREAD's keys (COMMAND GETKEYS, movable keys), and re-reads the whole slot map
    (CLUSTER SLOTS) whenever a command met MOVED."""
    calls = cell.redis_calls_per_second
    xread, getkeys = calls.get("xread", 0.0), calls.get("command|getkeys", 0.0)
    parts = []
    if xread and getkeys:
        parts.append(f"{getkeys / xread:.1f} COMMAND GETKEYS per XREAD")
    if slots := calls.get("cluster|slots", 0.0):
        parts.append(f"slot map re-read {slots:g}/s")
    return ", ".join(parts)


def _verdict_word(cell: CapacityCell | None) -> str:
    if cell is None:
        return "-"
    if cell.carried:
        return "yes"
    return {"not carried": "no", "not run": "no*", "failed": "failed"}.get(cell.status, cell.status)


def capacity_markdown(result: CapacityResult) -> str:
    """The capacity matrix and the per-cell figures, for docs/benchmarks.md."""
    return "\n".join([*_matrix(result), "", *_details(result), "", *_notes(result)]) + "\n"


def _matrix(result: CapacityResult) -> list[str]:
    cameras = sorted({cell.cameras for cell in result.cells})
    subscribers = sorted({cell.subscribers_per_camera for cell in result.cells})
    found = {(c.backend, c.cameras, c.subscribers_per_camera): c for c in result.cells}
    header = (
        f"| cameras ({result.fps:g} fps each) | "
        + " | ".join(f"{s} subscriber{'s' if s > 1 else ''}/camera" for s in subscribers)
        + " |"
    )
    lines = [
        f"Carried? one Redis / {BACKEND_LABELS['cluster']}, {result.width}x{result.height} JPEGs of "
        f"~{result.jpeg_bytes / 1024:.0f} KiB, everything on one {result.cpus}-core host:",
        "",
        header,
        "|---" * (len(subscribers) + 1) + "|",
    ]
    for c in cameras:
        words = [
            f"{_verdict_word(found.get(('redis', c, s)))} / {_verdict_word(found.get(('cluster', c, s)))}"
            for s in subscribers
        ]
        lines.append(f"| {c} | " + " | ".join(words) + " |")
    return lines


def _details(result: CapacityResult) -> list[str]:
    lines = [
        "| backend | cameras | subscribers/camera | frames/s delivered | carried | worst subscriber | "
        "p50 / p99 ms | CPU cores: Redis / publisher / subscribers | other load |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for cell in result.cells:
        if cell.seconds is None:
            lines.append(
                f"| {BACKEND_LABELS[cell.backend]} | {cell.cameras} | {cell.subscribers_per_camera} | "
                f"| {cell.status}: {cell.reason} | | | | |"
            )
            continue
        carried = "yes" if cell.carried else f"no ({cell.reason})"
        lines.append(
            f"| {BACKEND_LABELS[cell.backend]} | {cell.cameras} | {cell.subscribers_per_camera} | "
            f"{cell.delivered_fps:.0f} | {carried} | {_pct(cell.delivered_min)} | "
            f"{ms_text(cell.p50_ms)} / {ms_text(cell.p99_ms)} | {_num(cell.redis_cores)} / "
            f"{_num(cell.publisher_cores)} / {_num(cell.subscriber_cores)} | {_num(cell.other_cores)} |"
        )
    return lines


def _notes(result: CapacityResult) -> list[str]:
    return [
        f"{_rule_text(result)} (over {result.measure_seconds:g} s after {result.warm_seconds:g} s of "
        f"warm-up; latency = the frame's `sent_ns` to the subscriber's hand-over, same host clock). "
        "no* = not run: a smaller cell of the same backend was already not carried. "
        f"Redis, the publisher (one process, one client per camera, `StreamWriter`) and the subscribers "
        f"(one client each, the reader under `framebus.subscribe`, {result.subscribers_per_process} per "
        "process) share the same cores, so a cell not carried may be the load generator's CPU as much as "
        "Redis's: the CPU columns say which. The cluster runs on the same host, so it shows the cost of "
        "cluster routing, not the gain of more hosts. *other load* = the host's busy cores not ours.",
        *_routing_notes(result),
    ]


def _routing_notes(result: CapacityResult) -> list[str]:
    notes = [f"{c.cameras} x {c.subscribers_per_camera}: {routing(c)}" for c in result.cells if routing(c)]
    if not notes:
        return []
    return ["", "Cluster routing, from the nodes' command counts: " + "; ".join(notes) + "."]


def capacity_verdicts(result: CapacityResult, out: Verdicts) -> None:
    """Informational lines (the issue sets no target): per backend, the biggest cell carried."""
    for key in BACKEND_LABELS:
        cells = [c for c in result.cells if c.backend == key]
        carried = [c for c in cells if c.carried]
        out.check(f"capacity {key}: cells carried (of {len(cells)})", float(len(carried)))
        best = max(carried, key=lambda c: (c.cameras * c.subscribers_per_camera, c.cameras), default=None)
        where = "-" if best is None else f"{best.cameras}x{best.subscribers_per_camera}"
        streams = None if best is None else float(best.cameras * best.subscribers_per_camera)
        out.check(f"capacity {key}: largest carried, cameras x subs ({where})", streams)
        out.check(f"capacity {key}: p99 ms there", None if best is None else best.p99_ms)
        out.check(f"capacity {key}: Redis CPU cores there", None if best is None else best.redis_cores)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"{len(grid(True))} cells per backend")
    args = parser.parse_args()
    workdir = CACHE / "runs" / f"capacity-{dt.datetime.now():%Y%m%d-%H%M%S}"
    result = capacity_case(workdir, args.quick, lambda text: print(text, flush=True))
    print("\n".join(capacity_rows(result)))
    print()
    print(capacity_markdown(result))
    verdicts = Verdicts()
    capacity_verdicts(result, verdicts)
    print("\n".join(verdicts.lines))
    (workdir / "capacity.json").write_text(json.dumps(dataclasses.asdict(result), indent=1))
    print(f"\nresults: {workdir / 'capacity.json'} (logs in {workdir}), {result.seconds:.0f} s")


if __name__ == "__main__":
    main()
