"""The bench's cases: framebus per transport/size/rate, classic pipelines, fan-out, cameras."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from bench.analysis import delivery, fps_timeline, latency_summary, read_records
from bench.procs import CpuWindow, Proc, Redis, ServiceDied, free_port, http_get, wait_for
from bench.stack import Stack, counter_deltas

Result = dict[str, Any]
MAX_LATENCY_SAMPLES = 4000  # per case, for the plot


@dataclass
class Timing:
    warm: float  # seconds after readiness before measuring
    measure: float  # seconds measured per case
    preload: int  # CAPTURE_PRELOAD_FRAMES for maximum-rate cases


def hold(seconds: float, procs: list[Proc], tick: Callable[[float], None] | None = None) -> None:
    """Sleep ``seconds`` while checking every process is alive (raises ServiceDied at once)."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        for proc in procs:
            proc.check()
        if tick:
            tick(left)
        time.sleep(min(0.5, left))


Scrape = dict[str, list[tuple[str, dict[str, str], float]]]


@dataclass
class Window:
    """One measurement: metrics scraped and CPU read around ``timing.measure`` seconds."""

    before: Scrape
    after: Scrape
    cpu: CpuWindow
    t0: int  # time.time_ns() at the start and end, to select latency records
    t1: int


def measure(stack: Stack, timing: Timing) -> Window:
    """Warm up, then measure the running stack (raises ServiceDied if a process dies)."""
    hold(timing.warm, stack.procs())
    before = stack.scrape()
    cpu = CpuWindow(stack.procs())
    cpu.start()
    t0 = time.time_ns()
    hold(timing.measure, stack.procs())
    t1 = time.time_ns()
    cpu.stop()
    return Window(before, stack.scrape(), cpu, t0, t1)


def _peak_rss_mib(procs: list[Proc]) -> dict[str, float]:
    return {p.name: round(p.memory_kib("VmHWM") / 1024, 1) for p in procs if p.running}


def _cpu_ms_per_frame(cpu: CpuWindow, frames: float) -> dict[str, float | None]:
    per = {name: (round(s / frames * 1000, 3) if frames else None) for name, s in cpu.seconds.items()}
    per["total"] = round(sum(cpu.seconds.values()) / frames * 1000, 3) if frames else None
    return per


def _samples(latencies: list[float]) -> list[float]:
    step = max(1, len(latencies) // MAX_LATENCY_SAMPLES)
    return [round(v, 3) for v in latencies[::step]]


def framebus_case(stack: Stack, name: str, capture_env: dict[str, str], timing: Timing) -> Result:
    """One capture into an already running stack; measured over ``timing.measure`` seconds."""
    capture = stack.start_capture(capture_env)
    try:
        capture.wait_status("/readyz", 60)
        stack.viewer.wait_status("/readyz", 30)
        window = measure(stack, timing)
        api = stack.viewer.get_json("/api/stats")
        rss = _peak_rss_mib(stack.procs())
    finally:
        stack.stop_captures()
    cpu, t0 = window.cpu, window.t0
    counts = counter_deltas(window.before, window.after)
    records = read_records(stack.latency_log, window.t0, window.t1, "cam0")
    rendered = counts["rendered"]
    seen = delivery(records)
    return {
        "case": name,
        "transport": stack.transport,
        "fps": round(rendered / cpu.wall, 2),
        "source_fps": round(counts["captured"] / cpu.wall, 2),
        # Frames shown / frames the capture encoded (sequence numbers spanned in the window).
        "delivered_fraction": round(1 - seen["gap_drop_fraction"], 4),
        "latency": latency_summary(records),
        "delivery": seen,
        "cpu_ms_per_frame": _cpu_ms_per_frame(cpu, rendered),
        "cpu_cores_busy": round(sum(cpu.seconds.values()) / cpu.wall, 3),
        "bytes_per_frame": round(counts["bytes_sum"] / counts["bytes_count"])
        if counts["bytes_count"]
        else None,
        "peak_rss_mib": rss,
        "drops": counts["drops"],
        "api_stats": api,
        "fps_timeline": fps_timeline(records, t0),
        "latency_ms_samples": _samples([r.latency_s * 1000 for r in records]),
        "seconds": round(cpu.wall, 2),
    }


def classic_case(kind: str, fps: float, clip: Path, workdir: Path, timing: Timing) -> Result:
    """The naive reference pipeline ``kind`` (redis|http) as processes, paced at ``fps`` (0: unpaced)."""
    workdir.mkdir(parents=True, exist_ok=True)
    label = f"classic-{kind}-{'unpaced' if not fps else f'{fps:g}fps'}"
    log = workdir / f"{label}.csv"
    py = [sys.executable, "-m", "bench.classic"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs: list[Proc] = []
    try:
        if kind == "redis":
            server = Redis(workdir)
            procs.append(server)
            receiver = Proc(
                "receiver", [*py, "redis-receiver", "--redis", server.url, "--log", str(log)], env, workdir
            )
            procs.append(receiver)
            client = redis.Redis.from_url(server.url)
            wait_for(
                lambda: receiver.check() and client.pubsub_numsub("classic:new_frame")[0][1], 20, "receiver"
            )
            client.close()
            target = ["--redis", server.url]
        else:
            port = free_port()
            receiver = Proc(
                "receiver", [*py, "http-receiver", "--port", str(port), "--log", str(log)], env, workdir
            )
            procs.append(receiver)
            wait_for(
                lambda: receiver.check() and http_get(f"http://127.0.0.1:{port}/")[0] == 404, 20, "receiver"
            )
            target = ["--url", f"http://127.0.0.1:{port}/frame"]
        sender_argv = [*py, f"{kind}-sender", *target, "--clip", str(clip), "--fps", str(fps)]
        procs.append(Proc("sender", sender_argv, env, workdir))
        wait_for(lambda: procs[-1].check() and (log.exists() and log.stat().st_size > 100), 60, "first frame")
        hold(timing.warm, procs)
        cpu = CpuWindow(procs)
        cpu.start()
        t0 = time.time_ns()
        hold(timing.measure, procs)
        t1 = time.time_ns()
        cpu.stop()
        rss = _peak_rss_mib(procs)
    finally:
        for proc in reversed(procs):
            proc.stop()
    records = read_records(log, t0, t1)
    frames = len(records)
    return {
        "case": label,
        "transport": f"classic-{kind}",
        "fps": round(frames / cpu.wall, 2),
        "latency": latency_summary(records),
        "cpu_ms_per_frame": _cpu_ms_per_frame(cpu, frames),
        "cpu_cores_busy": round(sum(cpu.seconds.values()) / cpu.wall, 3),
        "peak_rss_mib": rss,
        "fps_timeline": fps_timeline(records, t0),
        "latency_ms_samples": _samples([r.latency_s * 1000 for r in records]),
        "seconds": round(cpu.wall, 2),
    }


def fanout_case(stack: Stack, readers: int, timing: Timing) -> Result:
    """``readers`` MJPEG clients on cam0 (a capture already runs); the viewer's CPU per second."""
    url = f"{stack.viewer.url}/stream.mjpg?camera=cam0"
    argv = [sys.executable, "-m", "bench.readers", url, str(readers)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = Proc(f"readers-{readers}", argv, env, stack.workdir)
    procs = [*stack.procs(), proc]
    try:
        wait_for(
            lambda: proc.check() and stack.viewer.get_json("/api/stats")["clients"] >= readers, 30, "readers"
        )
        hold(timing.warm, procs)
        before = stack.scrape()
        cpu = CpuWindow([stack.viewer, proc])
        cpu.start()
        hold(timing.measure, procs)
        cpu.stop()
        after = stack.scrape()
    finally:
        proc.stop()
    parts = _reader_parts(proc)
    counts = counter_deltas(before, after)
    return {
        "case": f"fanout-{readers}",
        "readers": readers,
        "viewer_cpu_per_second": round(cpu.seconds["viewer"] / cpu.wall, 4),
        "viewer_cpu_ms_per_frame": round(cpu.seconds["viewer"] / counts["rendered"] * 1000, 3)
        if counts["rendered"]
        else None,
        "readers_cpu_per_second": round(cpu.seconds[proc.name] / cpu.wall, 4),
        "fps": round(counts["rendered"] / cpu.wall, 2),
        "min_parts_per_reader": min(parts) if parts else None,
        "drops": counts["drops"],
        "seconds": round(cpu.wall, 2),
    }


def _reader_parts(proc: Proc) -> list[int]:
    for line in reversed(proc.log_path.read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            return list(json.loads(line)["parts"])
    return []


def cameras_case(
    stack: Stack, steps: list[int], clip: Path, timing: Timing, fps: float, say: Callable[[str], None]
) -> Result:
    """Adds 720p@``fps`` captures step by step until drops exceed 1% or the CPU saturates."""
    env = {"CAPTURE_SOURCE": str(clip), "CAPTURE_FPS": str(fps), "CAPTURE_PRELOAD_FRAMES": "30"}
    rows = []
    carried = 0
    for n in steps:
        new = [stack.start_capture(env, f"cam{i}") for i in range(len(stack.captures), n)]
        for capture in new:
            capture.wait_status("/readyz", 90)
        window = measure(stack, timing)
        cpu = window.cpu
        counts = counter_deltas(window.before, window.after)
        seen = delivery(read_records(stack.latency_log, window.t0, window.t1))
        busy = sum(cpu.seconds.values()) / cpu.wall / (os.cpu_count() or 1)
        ok = seen["gap_drop_fraction"] < 0.01 and seen["min_camera_source_fps"] >= 0.99 * fps
        rows.append(
            {
                "cameras": n,
                "ok": ok,
                "gap_drop_fraction": round(seen["gap_drop_fraction"], 4),
                "min_camera_source_fps": round(seen["min_camera_source_fps"], 2),
                "delivered_fps_total": round(counts["rendered"] / cpu.wall, 2),
                "cpu_utilisation": round(busy, 3),
                "drops": counts["drops"],
            }
        )
        say(
            f"{n} cameras: {'ok' if ok else 'NOT OK'} (drops {seen['gap_drop_fraction']:.2%}, slowest source "
            f"{seen['min_camera_source_fps']:.1f} fps, CPU {busy:.0%} of all cores)"
        )
        if not ok:
            break
        carried = n
        if busy > 0.95:
            break
    return {"fps_per_camera": fps, "carried": carried, "steps": rows}


__all__ = ["ServiceDied", "Timing", "cameras_case", "classic_case", "fanout_case", "framebus_case"]
