"""The bench's cases: framebus per transport/size/rate, classic pipelines, fan-out, cameras."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from bench.analysis import FrameRecord, delivery, fps_timeline, latency_summary, read_records
from bench.classic import NOTIFY
from bench.procs import CpuWindow, Proc, Redis, Scrape, ServiceDied, hold, metric_sum, wait_for
from bench.results import CamerasResult, CameraStep, FanoutResult, FramebusResult, PipelineResult
from bench.stack import Stack, counter_deltas
from tests.support.net import free_port, http_get

MAX_LATENCY_SAMPLES = 4000  # per case, for the plot
CAMERA_DROP_LIMIT = 0.01  # a camera count is carried while fewer frames than this are lost
BENCH_PYTHONPATH = {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}


@dataclass
class Timing:
    warm: float  # seconds after readiness before measuring
    measure: float  # seconds measured per case
    preload: int  # CAPTURE_PRELOAD_FRAMES for maximum-rate cases


@dataclass
class Window:
    """One measurement: CPU read (and metrics scraped) around ``timing.measure`` seconds."""

    cpu: CpuWindow
    t0: int  # time.time_ns() at the start and end, to select latency records
    t1: int
    before: Scrape = field(default_factory=dict)
    after: Scrape = field(default_factory=dict)


def measure(
    procs: list[Proc],
    timing: Timing,
    scrape: Callable[[], Scrape] | None = None,
    cpu_of: list[Proc] | None = None,
) -> Window:
    """Warm up, then measure CPU of ``cpu_of`` (default: all) while ``procs`` must stay alive."""
    hold(timing.warm, procs)
    before = scrape() if scrape else {}
    cpu = CpuWindow(cpu_of or procs)
    cpu.start()
    t0 = time.time_ns()
    hold(timing.measure, procs)
    t1 = time.time_ns()
    cpu.stop()
    return Window(cpu, t0, t1, before, scrape() if scrape else {})


def _peak_rss_mib(procs: list[Proc]) -> dict[str, float]:
    return {p.name: round(p.memory_kib("VmHWM") / 1024, 1) for p in procs if p.running}


def _cpu_ms_per_frame(cpu: CpuWindow, frames: float) -> dict[str, float | None]:
    per = {name: (round(s / frames * 1000, 3) if frames else None) for name, s in cpu.seconds.items()}
    per["total"] = round(sum(cpu.seconds.values()) / frames * 1000, 3) if frames else None
    return per


def _samples(records: list[FrameRecord]) -> list[float]:
    latencies = [r.latency_s * 1000 for r in records]
    step = max(1, len(latencies) // MAX_LATENCY_SAMPLES)
    return [round(v, 3) for v in latencies[::step]]


@dataclass(frozen=True)
class CaseName:
    case: str
    transport: str
    size: str
    mode: str  # "camera" or "max"


def _pipeline(
    name: CaseName, window: Window, frames: float, records: list[FrameRecord], rss: dict[str, float]
) -> PipelineResult:
    """The figures every end-to-end case reports."""
    cpu = window.cpu
    return PipelineResult(
        case=name.case,
        transport=name.transport,
        size=name.size,
        mode=name.mode,
        fps=round(frames / cpu.wall, 2),
        latency=latency_summary(records),
        cpu_ms_per_frame=_cpu_ms_per_frame(cpu, frames),
        cpu_cores_busy=round(sum(cpu.seconds.values()) / cpu.wall, 3),
        peak_rss_mib=rss,
        fps_timeline=fps_timeline(records, window.t0),
        latency_ms_samples=_samples(records),
        seconds=round(cpu.wall, 2),
    )


def framebus_case(
    stack: Stack, name: str, capture_env: dict[str, str], timing: Timing, size: str, mode: str
) -> FramebusResult:
    """One capture into an already running stack; measured over ``timing.measure`` seconds."""
    capture = stack.start_capture(capture_env)
    try:
        capture.wait_status("/readyz", 60)
        stack.viewer.wait_status("/readyz", 30)
        window = measure(stack.procs(), timing, stack.scrape)
        api = stack.viewer.get_json("/api/stats")
        rss = _peak_rss_mib(stack.procs())
    finally:
        stack.stop_captures()
    counts = counter_deltas(window.before, window.after)
    records = read_records(stack.latency_log, window.t0, window.t1, "cam0")
    seen = delivery(records)
    common = _pipeline(CaseName(name, stack.label, size, mode), window, counts.rendered, records, rss)
    return FramebusResult(
        **vars(common),
        source_fps=round(counts.captured / window.cpu.wall, 2),
        # Frames shown / frames the capture encoded (sequence numbers spanned in the window).
        delivered_fraction=round(1 - seen.gap_drop_fraction, 4),
        delivery=seen,
        bytes_per_frame=round(counts.bytes_sum / counts.bytes_count) if counts.bytes_count else None,
        drops=counts.drops,
        api_stats=api,
    )


def _classic(role: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "bench.classic", role, *args]


def _start_classic_receiver(kind: str, log: Path, workdir: Path, procs: list[Proc]) -> list[str]:
    """The receiver (and redis-server) of a classic pipeline, ready; the sender's target options.

    Started processes go into ``procs`` at once, so the caller stops them whatever happens."""
    env = {**os.environ, **BENCH_PYTHONPATH}
    if kind == "redis":
        server = Redis(workdir)
        procs.append(server)
        receiver = Proc(
            "receiver", _classic("redis-receiver", "--redis", server.url, "--log", str(log)), env, workdir
        )
        procs.append(receiver)
        client = redis.Redis.from_url(server.url)
        try:
            wait_for(lambda: receiver.check() and client.pubsub_numsub(NOTIFY)[0][1], 20, "receiver")
        finally:
            client.close()
        return ["--redis", server.url]
    port = free_port()
    receiver = Proc(
        "receiver", _classic("http-receiver", "--port", str(port), "--log", str(log)), env, workdir
    )
    procs.append(receiver)
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: receiver.check() and http_get(f"{url}/")[0] == 404, 20, "receiver")
    return ["--url", f"{url}/frame"]


def classic_case(
    kind: str, fps: float, clip: Path, size: str, workdir: Path, timing: Timing
) -> PipelineResult:
    """The naive reference pipeline ``kind`` (redis|http) as processes, paced at ``fps`` (0: unpaced)."""
    workdir.mkdir(parents=True, exist_ok=True)
    label = f"classic-{kind}-{'unpaced' if not fps else f'{fps:g}fps'}"
    name = CaseName(label, f"classic-{kind}", size, "camera" if fps else "max")
    log = workdir / f"{name.case}.csv"
    procs: list[Proc] = []
    try:
        target = _start_classic_receiver(kind, log, workdir, procs)
        argv = _classic(f"{kind}-sender", *target, "--clip", str(clip), "--fps", str(fps))
        sender = Proc("sender", argv, {**os.environ, **BENCH_PYTHONPATH}, workdir)
        procs.append(sender)
        wait_for(lambda: sender.check() and (log.exists() and log.stat().st_size > 100), 60, "first frame")
        window = measure(procs, timing)
        rss = _peak_rss_mib(procs)
    finally:
        for proc in reversed(procs):
            proc.stop()
    records = read_records(log, window.t0, window.t1)
    return _pipeline(name, window, len(records), records, rss)


def fanout_case(stack: Stack, readers: int, timing: Timing) -> FanoutResult:
    """``readers`` MJPEG clients on cam0 (a capture already runs); the viewer's CPU per second."""
    url = f"{stack.viewer.url}/stream.mjpg?camera=cam0"
    argv = [sys.executable, "-m", "bench.readers", url, str(readers)]
    proc = Proc(f"readers-{readers}", argv, {**os.environ, **BENCH_PYTHONPATH}, stack.workdir)
    procs = [*stack.procs(), proc]
    try:
        wait_for(
            lambda: proc.check() and stack.viewer.get_json("/api/stats")["clients"] >= readers, 30, "readers"
        )
        window = measure(procs, timing, stack.scrape)
    finally:
        proc.stop()
    parts = _reader_parts(proc)
    counts = counter_deltas(window.before, window.after)
    cpu = window.cpu
    cores = {name: round(seconds / cpu.wall, 4) for name, seconds in cpu.seconds.items()}
    latency = latency_summary(read_records(stack.latency_log, window.t0, window.t1, "cam0"))
    return FanoutResult(
        case=f"fanout-{readers}",
        readers=readers,
        viewer_cpu_per_second=round(cpu.seconds["viewer"] / cpu.wall, 4),
        viewer_cpu_ms_per_frame=round(cpu.seconds["viewer"] / counts.rendered * 1000, 3)
        if counts.rendered
        else None,
        readers_cpu_per_second=round(cpu.seconds[proc.name] / cpu.wall, 4),
        fps=round(counts.rendered / cpu.wall, 2),
        min_parts_per_reader=min(parts) if parts else None,
        drops=counts.drops,
        seconds=round(cpu.wall, 2),
        latency_p50_ms=latency.p50_ms,
        latency_p95_ms=latency.p95_ms,
        # What the box serving the readers pays; the readers stand for browsers elsewhere.
        cpu_cores_busy=round(sum(cores[p.name] for p in stack.procs()), 3),
        cpu_cores=cores,
    )


def _reader_parts(proc: Proc) -> list[int]:
    for line in reversed(proc.log_path.read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            return list(json.loads(line)["parts"])
    return []


def cameras_case(
    stack: Stack, steps: list[int], clip: Path, timing: Timing, fps: float, say: Callable[[str], None]
) -> CamerasResult:
    """Adds 720p@``fps`` captures step by step until drops exceed 1% or the CPU saturates."""
    env = {"CAPTURE_SOURCE": str(clip), "CAPTURE_FPS": str(fps), "CAPTURE_PRELOAD_FRAMES": "30"}
    rows: list[CameraStep] = []
    carried = 0
    for n in steps:
        row = _camera_step(stack, n, env, timing, fps)
        rows.append(row)
        p50 = "-" if row.latency_p50_ms is None else f"{row.latency_p50_ms:.1f}"
        say(
            f"{n} cameras: {'ok' if row.ok else 'NOT OK'} (drops {row.gap_drop_fraction:.2%}, slowest source "
            f"{row.min_camera_source_fps:.1f} fps, CPU {row.cpu_utilisation:.0%} of all cores, "
            f"cam0 p50 {p50} ms)"
        )
        if not row.ok:
            break
        carried = n
        if row.cpu_utilisation > 0.95:
            break
    return CamerasResult(fps_per_camera=fps, carried=carried, steps=rows)


def _camera_step(stack: Stack, n: int, env: dict[str, str], timing: Timing, fps: float) -> CameraStep:
    """Captures up to ``n`` cameras, then one measurement of all of them."""
    new = [stack.start_capture(env, f"cam{i}") for i in range(len(stack.captures), n)]
    for capture in new:
        capture.wait_status("/readyz", 90)
    window = measure(stack.procs(), timing, stack.scrape)
    cpu = window.cpu
    counts = counter_deltas(window.before, window.after)
    # The watched camera's frames as shown; every camera's as published (unwatched ones are not
    # rendered, so their delivery is what their capture put on the bus).
    records = read_records(stack.latency_log, window.t0, window.t1)
    seen = delivery(records)
    latency = latency_summary([r for r in records if r.camera == "cam0"])
    cores: dict[str, float] = {}
    for name, seconds in cpu.seconds.items():
        role = "capture" if name.startswith("capture") else name  # 32 captures: one figure
        cores[role] = cores.get(role, 0.0) + seconds / cpu.wall
    published = [
        metric_sum(window.after[c.name], "framebus_frames_published_total")
        - metric_sum(window.before.get(c.name, []), "framebus_frames_published_total")
        for c in stack.captures
    ]
    slowest_published = min(published) / cpu.wall if published else 0.0
    busy = sum(cpu.seconds.values()) / cpu.wall / (os.cpu_count() or 1)
    return CameraStep(
        cameras=n,
        ok=seen.gap_drop_fraction < CAMERA_DROP_LIMIT
        and seen.min_camera_source_fps >= 0.99 * fps
        and slowest_published >= 0.97 * fps,
        gap_drop_fraction=round(seen.gap_drop_fraction, 4),
        min_camera_source_fps=round(seen.min_camera_source_fps, 2),
        delivered_fps_total=round(counts.rendered / cpu.wall, 2),
        cpu_utilisation=round(busy, 3),
        drops=counts.drops,
        latency_p50_ms=latency.p50_ms,
        latency_p95_ms=latency.p95_ms,
        cpu_cores_busy=round(sum(cores.values()), 3),
        cpu_cores={role: round(value, 4) for role, value in cores.items()},
    )


__all__ = ["ServiceDied", "Timing", "cameras_case", "classic_case", "fanout_case", "framebus_case"]
