"""The bench's outputs: progress lines, the final table with the ratios that matter, JSON, PNG."""

from __future__ import annotations

from pathlib import Path

from bench.capacity import capacity_rows, capacity_verdicts
from bench.curves import watchers_rows, watchers_verdicts
from bench.on_demand import on_demand_rows, on_demand_verdicts
from bench.replicas import replicas_rows, replicas_verdicts
from bench.results import BenchRun, Floor, FramebusResult, PipelineResult
from bench.rtsp import rtsp_rows, rtsp_verdicts
from bench.verdicts import Target, Verdicts, ms_text


def one_line(r: PipelineResult) -> str:
    lat = r.latency
    return (
        f"{r.case}: {r.fps:.1f} fps, p50/p95/p99 {ms_text(lat.p50_ms)}/{ms_text(lat.p95_ms)}/"
        f"{ms_text(lat.p99_ms)} ms, CPU {ms_text(r.cpu_ms_per_frame.get('total'))} ms/frame"
    )


def _cpu(r: PipelineResult, *names: str) -> str:
    return "/".join(ms_text(r.cpu_ms_per_frame.get(n)) for n in names)


def framebus_rows(run: BenchRun) -> list[str]:
    head = (
        f"{'case':34} {'fps':>6} {'deliv':>6} {'p50':>5} {'p95':>5} {'p99':>5}  {'enc/tr/rend ms':>15}  "
        f"{'CPU ms/frame cap/up/view=total':>31} {'KiB/fr':>6} {'RSS MiB cap/up/view':>20}  drops"
    )
    rows = [head, "-" * len(head)]
    rows += [_framebus_row(r) for r in run.framebus]
    for r in run.classic:
        cpu_text = f"{_cpu(r, 'sender', 'redis-server', 'receiver')}={_cpu(r, 'total')}"
        rows.append(f"{r.case:34} {r.fps:6.1f} {'':>6} {_percentiles(r)}  {'':>15}  {cpu_text:>31}")
    return rows


def _percentiles(r: PipelineResult) -> str:
    lat = r.latency
    return f"{ms_text(lat.p50_ms):>5} {ms_text(lat.p95_ms):>5} {ms_text(lat.p99_ms):>5}"


def _framebus_row(r: FramebusResult) -> str:
    lat = r.latency
    up = "redis-server" if r.transport == "redis" else "gateway"
    cpu_text = f"{_cpu(r, 'capture', up, 'viewer')}={_cpu(r, 'total')}"
    stages = f"{ms_text(lat.encode_ms)}/{ms_text(lat.transport_ms)}/{ms_text(lat.render_ms)}"
    rss_text = "/".join(f"{r.peak_rss_mib.get(n, 0):.0f}" for n in ("capture", up, "viewer"))
    drops = ", ".join(f"{k}={v:.0f}" for k, v in r.drops.items()) or "none"
    kib = f"{r.bytes_per_frame / 1024:.0f}" if r.bytes_per_frame else "-"
    return (
        f"{r.case:34} {r.fps:6.1f} {r.delivered_fraction:6.1%} {_percentiles(r)}  {stages:>15}  "
        f"{cpu_text:>31} {kib:>6} {rss_text:>20}  {drops}"
    )


def _find(cases: list[FramebusResult], transport: str, size: str, mode: str) -> FramebusResult | None:
    return next((r for r in cases if (r.transport, r.size, r.mode) == (transport, size, mode)), None)


def _classic_cpu(run: BenchRun) -> float | None:
    """CPU ms/frame of the classic redis pipeline at camera rate (else unpaced) for comparison."""
    redis_cases = [r for r in run.classic if r.transport == "classic-redis"]
    redis_cases.sort(key=lambda r: r.case != "classic-redis-30fps")
    return redis_cases[0].cpu_ms_per_frame.get("total") if redis_cases else None


def _camera_rate(out: Verdicts, run: BenchRun, cam: FramebusResult, floor: Floor) -> None:
    prefix = f"{cam.transport} {cam.size} camera rate"
    out.check(f"{prefix}: delivered fraction", cam.delivered_fraction, Target(">=", 0.99))
    p50, p99 = cam.latency.p50_ms, cam.latency.p99_ms
    if p50 is not None and p99 is not None:
        floor_ms = floor.latency_floor_s * 1e3
        out.check(f"{prefix}: p50 / codec floor", p50 / floor_ms, Target("<=", 1.25))
        out.check(f"{prefix}: p99 / p50", p99 / p50, Target("<=", 1.5))
    classic_cpu, total = _classic_cpu(run), cam.cpu_ms_per_frame.get("total")
    if classic_cpu and total is not None:
        out.check(f"{prefix}: CPU/frame vs classic redis", total / classic_cpu, Target("<=", 0.55))
    if total is not None:
        # The work no design can avoid: encode + render, plus decoding the source (pre-decoded
        # here, so 0), hence the codec floor itself.
        floor_ms = floor.latency_floor_s * 1e3
        out.check(f"{prefix}: CPU/frame vs codec floor", total / floor_ms, Target("<=", 1.15))


def _max_rate(out: Verdicts, run: BenchRun, top: FramebusResult, floor: Floor) -> None:
    prefix = f"{top.transport} {top.size} max rate"
    out.check(f"{prefix}: fps", top.fps, Target(">=", 200) if top.size == "720p" else None)
    out.check(f"{prefix}: fraction of 1/(slowest stage)", top.fps / floor.max_fps_floor, Target(">=", 0.9))
    classic_max = [r.fps for r in run.classic if r.mode == "max"]
    if classic_max and top.size == "720p":
        out.check(f"{prefix}: x best classic unpaced", top.fps / max(classic_max), Target(">=", 3))


def _backplane(out: Verdicts, run: BenchRun) -> None:
    """Issue 10: the Redis backplane costs at most 1 ms of p50 over the in-memory gateway."""
    bus = _find(run.framebus, "http-backplane", "720p", "camera")
    memory = _find(run.framebus, "http", "720p", "camera")
    if bus is None:
        return
    out.check(
        "http+backplane 720p camera rate: delivered fraction", bus.delivered_fraction, Target(">=", 1.0)
    )
    if memory is not None and bus.latency.p50_ms is not None and memory.latency.p50_ms is not None:
        added = bus.latency.p50_ms - memory.latency.p50_ms
        out.check("http+backplane 720p: p50 added over the in-memory gateway (ms)", added, Target("<=", 1.0))


def ratios(run: BenchRun) -> list[str]:
    """The issue's targets, each with this run's figure and a verdict."""
    out = Verdicts()
    for size, floor in run.floor.items():
        out.lines.append(
            f"{size}: codec floor {floor.latency_floor_s * 1e3:.2f} ms/frame (encode "
            f"{floor.encode_s * 1e3:.2f} + render {floor.render_s * 1e3:.2f}), "
            f"max {floor.max_fps_floor:.0f} fps"
        )
        for transport in ("redis", "http"):
            if cam := _find(run.framebus, transport, size, "camera"):
                _camera_rate(out, run, cam, floor)
            if top := _find(run.framebus, transport, size, "max"):
                _max_rate(out, run, top, floor)
    _backplane(out, run)
    _scaling(out, run)
    if run.watchers:
        watchers_verdicts(run.watchers, out)
    if run.on_demand:
        on_demand_verdicts(run.on_demand, out)
    if run.rtsp:
        rtsp_verdicts(run.rtsp, out)
    if run.replicas:
        replicas_verdicts(run.replicas, out)
    if run.capacity:
        capacity_verdicts(run.capacity, out)
    return out.lines


def _scaling(out: Verdicts, run: BenchRun) -> None:
    """Readers, the client library, cameras: what grows with the load."""
    fan = {r.readers: r for r in run.fanout}
    if 1 in fan and max(fan) > 1:
        most = max(fan)
        extra = fan[most].viewer_cpu_per_second / fan[1].viewer_cpu_per_second - 1
        target = Target("<=", 0.10) if most == 100 else None
        out.check(f"fan-out: viewer CPU with {most} readers vs 1 (extra, fraction)", extra, target)
    if run.library:
        lib = run.library
        out.check("client library: p50 added over a raw reader (ms)", lib.p50_added_ms, Target("<=", 1.0))
        out.check("client library: 2-worker pool vs 1 worker (frames)", lib.pool_ratio, Target(">=", 1.8))
    if run.cameras:
        cams = run.cameras
        label = f"cameras carried at 720p@{cams.fps_per_camera:g} fps, one watched (no drops)"
        out.check(label, cams.carried, Target(">=", 24))


def table(run: BenchRun) -> str:
    out = ["", "framebus vs classic (fps delivered at 600x600; latency capture -> 600x600 ready, ms)"]
    out += framebus_rows(run)
    if run.fanout:
        out += ["", "fan-out (one 720p camera at 30 fps, N MJPEG readers)"]
        for f in run.fanout:
            out.append(
                f"  {f.readers:4d} readers: viewer {f.viewer_cpu_per_second:.3f} CPU-s/s "
                f"({ms_text(f.viewer_cpu_ms_per_frame)} ms/frame), "
                f"readers {f.readers_cpu_per_second:.3f} CPU-s/s, "
                f"slowest reader {f.min_parts_per_reader} parts"
            )
    if run.cameras:
        out += ["", f"cameras at 720p@{run.cameras.fps_per_camera:g} fps (redis, one viewer)"]
        for row in run.cameras.steps:
            out.append(
                f"  {row.cameras:3d}: {'ok    ' if row.ok else 'NOT OK'} "
                f"drops {row.gap_drop_fraction:.2%}, "
                f"slowest source {row.min_camera_source_fps:.1f} fps, CPU {row.cpu_utilisation:.0%}"
            )
    if run.watchers:
        out += ["", *watchers_rows(run.watchers)]
    if run.on_demand:
        out += ["", *on_demand_rows(run.on_demand)]
    if run.rtsp:
        out += ["", *rtsp_rows(run.rtsp)]
    if run.replicas:
        out += ["", *replicas_rows(run.replicas)]
    if run.capacity:
        out += ["", *capacity_rows(run.capacity)]
    out += ["", "targets (issues 4, 10, 13, 15), this run:", *ratios(run)]
    return "\n".join(out)


def plot(run: BenchRun, path: Path) -> Path | None:
    """Latency distribution per transport (camera rate) and fps over time; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (bench extra): no plot")
        return None
    cases: list[PipelineResult] = [*run.framebus, *run.classic]
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5.5))
    for r in cases:
        samples = sorted(r.latency_ms_samples)
        if r.mode != "camera" or not samples:
            continue
        ys = [(i + 1) / len(samples) for i in range(len(samples))]
        style = "--" if r.case.startswith("classic") else "-"
        left.plot(samples, ys, style, label=f"{r.case} (p50 {ms_text(r.latency.p50_ms)} ms)")
    for size, floor in run.floor.items():
        left.axvline(floor.latency_floor_s * 1e3, ls=":", color="grey")
        left.text(floor.latency_floor_s * 1e3, 0.02, f" floor {size}", color="grey", fontsize=8)
    left.set(
        xscale="log",
        xlabel="end-to-end latency, ms (log)",
        ylabel="fraction of frames",
        title="Latency at camera rate (30 fps source), CDF",
    )
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=7)
    for r in cases:
        if timeline := r.fps_timeline:
            style = "--" if r.case.startswith("classic") else "-"  # 12 cases, 10 colours
            right.plot(range(len(timeline)), timeline, style, marker=".", label=r.case)
    right.set(
        xlabel="seconds into the measurement",
        ylabel="frames ready per second (600x600)",
        title="Delivered fps over time",
    )
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize=7)
    fig.suptitle(f"framebus bench {run.started} ({run.machine.cpus} cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
