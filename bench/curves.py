"""Cost curves: CPU and latency as cameras, watchers and MJPEG readers grow, to size a box.

The cameras and fan-out cases (bench/cases.py) give two of the curves; the watchers case here gives
the third: N cameras at 720p@15 with W of them watched (one MJPEG reader each), W = 0..N.

``python -m bench.curves RESULTS.json [MORE.json ...] OUT.png`` draws the curves from saved runs
(a later file's part replaces an earlier one's, so `--only cameras` and `--only fanout` runs
combine); parts an older file lacks are left out.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from bench.analysis import delivery, latency_summary, read_records
from bench.cases import Timing, measure
from bench.procs import metric_sum, wait_for
from bench.results import CamerasResult, CameraStep, FanoutResult, WatchersResult, WatchStep
from bench.stack import Stack, counter_deltas
from bench.verdicts import Target, Verdicts, ms_text

if TYPE_CHECKING:
    from _typeshed import DataclassInstance
    from matplotlib.axes import Axes

WATCH_FPS = 15.0
WATCH_CAMERAS = 6  # 4 in a quick run; either leaves room on 2 cores with every camera watched
# The same colour for the same series in every panel: total, captures, viewer.
CPU_COLOURS = ("tab:blue", "tab:orange", "tab:green")
# "An unwatched camera costs no more than its capture's own work": discovery and the registry
# may cost a little; 5% of the captures' CPU is the tolerance we hold it to.
UNWATCHED_EXTRA = Target("<=", 0.05)
QUICK_TIMING = Timing(warm=1.5, measure=3.0, preload=30)
FULL_TIMING = Timing(warm=3.0, measure=10.0, preload=30)


def watchers_case(workdir: Path, clip: Path, quick: bool, say: Callable[[str], None]) -> WatchersResult:
    """N cameras always followed; one more watched per step, W = 0..N (~40 s quick, ~2 min full)."""
    count = 4 if quick else WATCH_CAMERAS
    timing = QUICK_TIMING if quick else FULL_TIMING
    cameras = [f"cam{i}" for i in range(count)]
    # Every camera followed, as in the cameras case, so W alone decides what the viewer renders.
    viewer_env = {"VIEWER_CAMERAS": ",".join(cameras), "VIEWER_MAX_CAMERAS": str(count)}
    stack = Stack("redis", workdir / "watchers", viewer_env, watched=())
    steps: list[WatchStep] = []
    try:
        _start_cameras(stack, cameras, clip)
        for watched in range(count + 1):
            if watched:
                _watch(stack, cameras[watched - 1])
            step = _watch_step(stack, cameras[:watched], timing)
            steps.append(step)
            say(f"watchers {watched}/{count}: {_step_text(step)}")
    finally:
        stack.close()
    return WatchersResult(cameras=count, fps_per_camera=WATCH_FPS, size="720p", steps=steps)


def _start_cameras(stack: Stack, cameras: list[str], clip: Path) -> None:
    env = {"CAPTURE_SOURCE": str(clip), "CAPTURE_FPS": str(WATCH_FPS), "CAPTURE_PRELOAD_FRAMES": "30"}
    for capture in [stack.start_capture(env, camera) for camera in cameras]:
        capture.wait_status("/readyz", 90)


def _watch(stack: Stack, camera: str) -> None:
    """One MJPEG reader on ``camera``, connected before the step measures.

    Waits on the /metrics gauge, not /api/stats: asking for a camera's stats makes the viewer
    render it for a while, which would watch cameras this step must leave unwatched."""
    reader = stack.watch(camera)

    def attached() -> bool:
        reader.check()
        return metric_sum(stack.viewer.metrics(), "framebus_mjpeg_clients", camera=camera) >= 1

    wait_for(attached, 30, f"an MJPEG reader on {camera}")


def _watch_step(stack: Stack, watched: list[str], timing: Timing) -> WatchStep:
    # The readers must stay alive, but their CPU is the browsers', not the box's.
    window = measure([*stack.procs(), *stack.watchers], timing, stack.scrape, cpu_of=stack.procs())
    cpu = window.cpu
    records = [r for r in read_records(stack.latency_log, window.t0, window.t1) if r.camera in watched]
    latency = latency_summary(records)
    counts = counter_deltas(window.before, window.after)
    cores: dict[str, float] = {}
    for name, seconds in cpu.seconds.items():
        role = "capture" if name.startswith("capture") else name
        cores[role] = cores.get(role, 0.0) + seconds / cpu.wall
    return WatchStep(
        watched=len(watched),
        cpu_cores_busy=round(sum(cores.values()), 3),
        cpu_cores={role: round(value, 4) for role, value in cores.items()},
        latency_p50_ms=latency.p50_ms,
        latency_p95_ms=latency.p95_ms,
        rendered_fps=round(counts.rendered / cpu.wall, 2),
        gap_drop_fraction=round(delivery(records).gap_drop_fraction, 4) if watched else None,
        drops=counts.drops,
        seconds=round(cpu.wall, 2),
    )


def _step_text(step: WatchStep) -> str:
    roles = "/".join(f"{step.cpu_cores.get(r, 0.0):.2f}" for r in ("capture", "redis-server", "viewer"))
    gaps = "-" if step.gap_drop_fraction is None else f"{step.gap_drop_fraction:.2%}"
    drops = ", ".join(f"{k}={v:.0f}" for k, v in step.drops.items()) or "none"
    return (
        f"CPU {step.cpu_cores_busy:.2f} cores ({roles}), p50/p95 {ms_text(step.latency_p50_ms)}/"
        f"{ms_text(step.latency_p95_ms)} ms, {step.rendered_fps:.1f} fps rendered, gaps {gaps}, drops {drops}"
    )


def unwatched_cost(result: WatchersResult) -> float | None:
    """With no camera watched: the viewer's and Redis's CPU as a fraction of the captures' own
    (an unwatched camera should cost about what its capture costs, nothing more)."""
    idle = next((step for step in result.steps if step.watched == 0), None)
    if idle is None or not idle.cpu_cores.get("capture"):
        return None
    extra = sum(cores for name, cores in idle.cpu_cores.items() if name != "capture")
    return extra / idle.cpu_cores["capture"]


def watchers_verdicts(result: WatchersResult, out: Verdicts) -> None:
    label = f"{result.cameras} cameras unwatched: viewer+redis CPU / the captures' own"
    out.check(label, unwatched_cost(result), UNWATCHED_EXTRA)


def watchers_rows(result: WatchersResult) -> list[str]:
    """The table's lines for the watchers case (a heading line first)."""
    head = (
        f"watchers: {result.cameras} cameras at {result.size}@{result.fps_per_camera:g} fps (redis, one "
        "viewer), W watched by one MJPEG reader each; CPU cores busy as capture/redis-server/viewer"
    )
    return [head, *(f"  W={s.watched:<3d} {_step_text(s)}" for s in result.steps)]


# Loading saved runs: the dataclasses from JSON objects, skipping what an older file lacks.

D = TypeVar("D", bound="DataclassInstance")


def _build(cls: type[D], raw: object) -> D | None:
    """``cls`` from a JSON object; unknown keys ignored, None if a field without a default is missing."""
    if not isinstance(raw, dict):
        return None
    fields = dataclasses.fields(cls)
    missing = dataclasses.MISSING
    required = {f.name for f in fields if f.default is missing and f.default_factory is missing}
    if not required <= raw.keys():
        return None
    return cls(**{f.name: raw[f.name] for f in fields if f.name in raw})


def _camera_step(raw: object, cpus: int | None) -> CameraStep | None:
    # Older files have the share of all cores only: the same figure, times the machine's cores.
    if isinstance(raw, dict) and raw.get("cpu_cores_busy") is None and cpus and "cpu_utilisation" in raw:
        raw = {**raw, "cpu_cores_busy": round(raw["cpu_utilisation"] * cpus, 3)}
    return _build(CameraStep, raw)


def _steps(raws: object, build: Callable[[object], D | None]) -> list[D]:
    built = [build(raw) for raw in raws] if isinstance(raws, list) else []
    return [step for step in built if step is not None]


class Curves(NamedTuple):
    cameras: CamerasResult | None
    fanout: list[FanoutResult]
    watchers: WatchersResult | None


def load_curves(data: dict[str, Any]) -> Curves:
    """The curves' parts of a saved bench run (``BenchRun`` as JSON)."""
    cpus = (data.get("machine") or {}).get("cpus")
    cameras = watchers = None
    if isinstance(raw := data.get("cameras"), dict):
        steps = _steps(raw.get("steps"), lambda s: _camera_step(s, cpus))
        cameras = _build(CamerasResult, {**raw, "steps": steps}) if steps else None
    if isinstance(raw := data.get("watchers"), dict):
        watch_steps = _steps(raw.get("steps"), lambda s: _build(WatchStep, s))
        watchers = _build(WatchersResult, {**raw, "steps": watch_steps}) if watch_steps else None
    fanout = _steps(data.get("fanout"), lambda f: _build(FanoutResult, f))
    return Curves(cameras, fanout, watchers)


# The plot: one panel per curve, CPU on the left axis and latency on the right.


@dataclass
class Curve:
    title: str
    xlabel: str
    xs: list[int]
    cpu: dict[str, list[float | None]]  # series -> CPU-s/s (cores busy) at each x; total first
    p50: list[float | None]
    p95: list[float | None]
    log_x: bool = False
    mark: tuple[int, str] | None = None  # a vertical line at x, labelled


def _cameras_curve(result: CamerasResult | None) -> Curve | None:
    if result is None or not result.steps:
        return None
    steps = result.steps
    return Curve(
        title=f"Cameras at 720p@{result.fps_per_camera:g}, one watched",
        xlabel="cameras followed",
        xs=[s.cameras for s in steps],
        cpu={
            "all processes": [s.cpu_cores_busy for s in steps],
            "captures": [s.cpu_cores.get("capture") for s in steps],
            "viewer": [s.cpu_cores.get("viewer") for s in steps],
        },
        p50=[s.latency_p50_ms for s in steps],
        p95=[s.latency_p95_ms for s in steps],
        mark=(result.carried, f"carried {result.carried}"),
    )


def _readers_curve(fanout: list[FanoutResult]) -> Curve | None:
    if not fanout:
        return None
    rows = sorted(fanout, key=lambda f: f.readers)
    return Curve(
        title="MJPEG readers of one 720p@30 camera",
        xlabel="readers (log)",
        xs=[f.readers for f in rows],
        cpu={
            "capture + redis + viewer": [f.cpu_cores_busy for f in rows],
            "capture": [f.cpu_cores.get("capture") for f in rows],
            "viewer": [f.viewer_cpu_per_second for f in rows],
        },
        p50=[f.latency_p50_ms for f in rows],
        p95=[f.latency_p95_ms for f in rows],
        log_x=True,
    )


def _watchers_curve(result: WatchersResult | None) -> Curve | None:
    if result is None or not result.steps:
        return None
    steps = result.steps
    return Curve(
        title=f"{result.cameras} cameras at {result.size}@{result.fps_per_camera:g}, W watched",
        xlabel="cameras watched (one MJPEG reader each)",
        xs=[s.watched for s in steps],
        cpu={
            "all processes": [s.cpu_cores_busy for s in steps],
            "captures": [s.cpu_cores.get("capture") for s in steps],
            "viewer": [s.cpu_cores.get("viewer") for s in steps],
        },
        p50=[s.latency_p50_ms for s in steps],
        p95=[s.latency_p95_ms for s in steps],
    )


def _points(xs: list[int], ys: list[float | None]) -> tuple[list[int], list[float]]:
    """The (x, y) pairs that were measured (None: an older file or nothing rendered)."""
    pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
    return [x for x, _ in pairs], [y for _, y in pairs]


def _draw(ax: Axes, curve: Curve | None, cores: int | None) -> None:
    if curve is None:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "not in these results", ha="center", va="center", transform=ax.transAxes)
        return
    _draw_cpu(ax, curve, cores)
    right = ax.twinx()
    _draw_latency(right, curve)
    handles, labels = ax.get_legend_handles_labels()
    more, more_labels = right.get_legend_handles_labels()
    ax.legend(handles + more, labels + more_labels, fontsize=7, loc="upper left")


def _draw_cpu(ax: Axes, curve: Curve, cores: int | None) -> None:
    for (label, ys), colour in zip(curve.cpu.items(), CPU_COLOURS, strict=False):
        xs, values = _points(curve.xs, ys)
        if values:
            width = 2 if colour == CPU_COLOURS[0] else 1  # the total stands out
            ax.plot(xs, values, marker="o", color=colour, lw=width, label=label)
    if cores:  # the box's capacity, so the headroom reads off the plot
        ax.axhline(cores, ls=":", color="grey", label=f"all {cores} cores")
    if curve.mark:
        ax.axvline(curve.mark[0], ls="--", color="grey", alpha=0.6, label=curve.mark[1])
    ax.set(title=curve.title, xlabel=curve.xlabel, ylabel="CPU cores busy (CPU-s/s)")
    ax.set_ylim(bottom=0)
    if curve.log_x:
        ax.set_xscale("log")
    # Ticks at the counts measured, as plain numbers (not 10^2, nor 2.5 cameras).
    ax.set_xticks(curve.xs, [str(x) for x in curve.xs])
    ax.set_xticks([], minor=True)
    ax.grid(True, alpha=0.3)


def _draw_latency(ax: Axes, curve: Curve) -> None:
    drawn = 0
    for ys, style, label in ((curve.p50, "-", "p50 latency"), (curve.p95, "--", "p95 latency")):
        xs, values = _points(curve.xs, ys)
        if values:
            ax.plot(xs, values, style, color="tab:red", marker="s", ms=4, label=label)
            drawn += 1
    if not drawn:  # an older results file: CPU only
        ax.set_yticks([])
    unit = "latency capture -> 600x600 ready, ms" if drawn else "latency: not in these results"
    ax.set_ylabel(unit, color="tab:red")
    ax.set_ylim(bottom=0)


def plot_curves(
    cameras: CamerasResult | None,
    fanout: list[FanoutResult],
    watchers: WatchersResult | None,
    path: Path,
    *,
    cores: int | None = None,
    title: str | None = None,
) -> Path | None:
    """Three panels (cameras, watchers, readers) to a PNG; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (bench extra): no cost curves")
        return None
    curves = (_cameras_curve(cameras), _watchers_curve(watchers), _readers_curve(fanout))
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.5))
    for ax, curve in zip(axes, curves, strict=True):
        _draw(ax, curve, cores)
    fig.suptitle(title or "framebus cost curves: CPU (left axis) and latency (right axis)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _merge(files: list[Path]) -> tuple[Curves, dict[str, Any]]:
    """Each part from the last file that has it; the last file's run for the title."""
    merged, last = Curves(None, [], None), {}
    for path in files:
        last = json.loads(path.read_text())
        part = load_curves(last)
        merged = Curves(
            part.cameras or merged.cameras, part.fanout or merged.fanout, part.watchers or merged.watchers
        )
    return merged, last


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.curves", description=__doc__)
    parser.add_argument("results", nargs="+", type=Path, help="bench/results/<timestamp>.json")
    parser.add_argument("out", type=Path, help="the PNG to write")
    args = parser.parse_args()
    curves, run = _merge(args.results)
    if curves.cameras is None and not curves.fanout and curves.watchers is None:
        raise SystemExit("no cameras, fan-out or watchers figures in " + ", ".join(map(str, args.results)))
    cores = (run.get("machine") or {}).get("cpus")
    title = f"framebus cost curves, {run.get('started', '?')} ({cores} cores)"
    png = plot_curves(*curves, args.out, cores=cores, title=title)
    if png is None:
        raise SystemExit(1)
    print(png)


if __name__ == "__main__":
    main()
