"""`make bench`: framebus's transports measured side by side against the codec floor and the classics.

python -m bench [--quick] [--only CASE,...]   (cases: see CASES)
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path

from bench import report
from bench.capacity import capacity_case
from bench.cases import Timing, cameras_case, classic_case, fanout_case, framebus_case
from bench.clip import CACHE, clip_path
from bench.curves import plot_curves, watchers_case
from bench.floor import measure_floor
from bench.on_demand import on_demand_case
from bench.procs import Redis, ServiceDied
from bench.replicas import replicas_case
from bench.results import BenchRun, LibraryResult, Machine
from bench.rtsp import rtsp_case
from bench.stack import Stack

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
MEASURE_CLIENT = ROOT / "examples" / "algorithm" / "measure_client.py"
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}
CLIP_SECONDS = 10
CASES = (
    "framebus",
    "classic",
    "fanout",
    "cameras",
    "watchers",
    "on_demand",
    "rtsp",
    "replicas",
    "capacity",
    "library",
)
# Left out of --quick: the minute goes to the transports and the classics.
SLOW_CASES = {"cameras", "fanout", "watchers", "on_demand", "rtsp", "replicas", "capacity"}


class Plan:
    """Cases with an estimated duration each, so progress lines can say how long is left."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, float, Callable[[], None]]] = []
        self.started = time.monotonic()
        self._done_estimate = 0.0

    def add(self, name: str, estimate: float, run: Callable[[], None]) -> None:
        self.steps.append((name, estimate, run))

    def say(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        total = sum(e for _, e, _ in self.steps)
        left = max(0.0, total - self._done_estimate)
        # Stretch by how slow we have been so far (clips, slow starts on a busy machine).
        if self._done_estimate > 0:
            left *= max(1.0, elapsed / self._done_estimate)
        print(f"[{elapsed:5.0f}s | ~{left:4.0f}s left] {text}", flush=True)

    def run(self) -> list[str]:
        failures = []
        for index, (name, estimate, run) in enumerate(self.steps, 1):
            self.say(f"case {index}/{len(self.steps)}: {name}")
            try:
                run()
            except (ServiceDied, TimeoutError, OSError) as exc:
                failures.append(f"{name}: {exc}")
                self.say(f"!! FAILED {name}: {exc}")
            except Exception as exc:
                failures.append(f"{name}: {type(exc).__name__}: {exc}")
                self.say(f"!! FAILED {name}: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
            self._done_estimate += estimate
        return failures


class Cases:
    """The bench's cases as steps of one plan; each writes its results into ``run``."""

    def __init__(self, plan: Plan, run: BenchRun, workdir: Path, quick: bool) -> None:
        self.plan, self.run, self.workdir, self.quick = plan, run, workdir, quick
        self.timing = Timing(warm=1.0, measure=3.0, preload=60) if quick else Timing(3.0, 10.0, 60)
        self._clips: dict[str, Path] = {}

    def clip(self, size: str) -> Path:
        if size not in self._clips:
            self.plan.say(f"clip {size}: {CACHE} (made once with ffmpeg)")
            self._clips[size] = clip_path(*SIZES[size], CLIP_SECONDS)
        return self._clips[size]

    def floor(self, size: str) -> None:
        quick = self.quick
        figures = measure_floor(self.clip(size), frames=30 if quick else 60, passes=2 if quick else 3)
        self.run.floor[size] = figures
        self.plan.say(
            f"codec floor {size}: encode {figures.encode_s * 1e3:.2f} ms, render "
            f"{figures.render_s * 1e3:.2f} ms -> {figures.max_fps_floor:.0f} fps, "
            f"{figures.latency_floor_s * 1e3:.2f} ms"
        )

    def framebus(self, transport: str, size: str, backplane: bool = False) -> None:
        label = f"{transport}-backplane" if backplane else transport
        stack = Stack(transport, self.workdir / f"framebus-{label}-{size}", backplane=backplane)
        try:
            # Frames pre-decoded in both modes (as the classic senders do): a camera's H.264/RTSP
            # decode costs the same whatever carries the frames afterwards.
            preload = {"CAPTURE_PRELOAD_FRAMES": str(self.timing.preload)}
            modes = {"camera": preload, "max": {**preload, "CAPTURE_FPS": "0"}}
            for mode, env in modes.items():
                name = f"framebus-{label}-{size}-{mode}"
                self.plan.say(f"{name}: measuring {self.timing.measure:g}s")
                capture_env = {"CAPTURE_SOURCE": str(self.clip(size)), **env}
                result = framebus_case(stack, name, capture_env, self.timing, size, mode)
                self.run.framebus.append(result)
                self.plan.say(report.one_line(result))
        finally:
            stack.close()

    def classic(self, kind: str, fps: float) -> None:
        result = classic_case(kind, fps, self.clip("720p"), "720p", self.workdir / "classic", self.timing)
        self.run.classic.append(result)
        self.plan.say(report.one_line(result))

    def fanout(self) -> None:
        stack = Stack("redis", self.workdir / "fanout", watched=())  # the readers are the watchers
        try:
            stack.start_capture({"CAPTURE_SOURCE": str(self.clip("720p"))}).wait_status("/readyz", 60)
            for readers in (1, 10) if self.quick else (1, 10, 100):
                result = fanout_case(stack, readers, self.timing)
                self.run.fanout.append(result)
                self.plan.say(
                    f"fan-out {readers}: viewer {result.viewer_cpu_per_second:.3f} CPU-s/s, "
                    f"{result.fps} fps rendered, slowest reader {result.min_parts_per_reader} parts"
                )
        finally:
            stack.close()

    def watchers(self) -> None:
        self.run.watchers = watchers_case(
            self.workdir / "watchers", self.clip("720p"), self.quick, self.plan.say
        )

    def on_demand(self) -> None:
        self.run.on_demand = on_demand_case(self.workdir / "on-demand", self.quick, self.plan.say)

    def rtsp(self) -> None:
        result = rtsp_case(self.workdir / "rtsp", self.quick, self.plan.say, self.run.floor.get("1080p"))
        self.run.rtsp = result

    def replicas(self) -> None:
        self.run.replicas = replicas_case(self.workdir / "replicas", self.quick, self.plan.say)

    def capacity(self) -> None:
        self.run.capacity = capacity_case(self.workdir / "capacity", self.quick, self.plan.say)

    def library(self) -> None:
        self.run.library = lib = library_case(self.workdir, 5.0 if self.quick else 10.0)
        self.plan.say(f"library: p50 +{lib.p50_added_ms:.2f} ms, 2-worker pool x{lib.pool_ratio:.2f}")

    def cameras(self) -> None:
        steps = [1, 2, 4, 8, 12, 16, 24, 32]
        # Every camera followed, one watched (cam0): the others cost their capture alone.
        viewer_env = {
            "VIEWER_CAMERAS": ",".join(f"cam{i}" for i in range(max(steps))),
            "VIEWER_MAX_CAMERAS": str(max(steps)),
        }
        stack = Stack("redis", self.workdir / "cameras", viewer_env)
        try:
            cam_timing = Timing(warm=3.0, measure=8.0, preload=30)
            self.run.cameras = cameras_case(stack, steps, self.clip("720p"), cam_timing, 15.0, self.plan.say)
        finally:
            stack.close()


def library_case(workdir: Path, seconds: float) -> LibraryResult:
    """The client library's overhead over a raw XREAD reader, and a 2-worker pool's gain."""
    redis = Redis(workdir / "library")
    try:
        figures = {}
        for command in (["overhead", "--seconds", str(seconds)], ["pool", "--seconds", str(seconds)]):
            argv = [sys.executable, str(MEASURE_CLIENT), "--url", redis.url, *command]
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            out = subprocess.run(
                argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=True
            )
            figures[command[0]] = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        redis.stop()
    pool = figures["pool"]
    return LibraryResult(
        p50_added_ms=float(figures["overhead"]["p50_added_ms"]),
        pool_one_worker=int(pool["one_worker"]),
        pool_two_workers=int(pool["two_workers"]),
        pool_ratio=float(pool["ratio"]),
    )


def selected_cases(only: str, quick: bool) -> set[str]:
    chosen = set(only.split(",")) if only else set(CASES)
    if unknown := chosen - set(CASES):
        raise SystemExit(f"--only: unknown case(s) {', '.join(sorted(unknown))}; known: {', '.join(CASES)}")
    return chosen - SLOW_CASES if quick else chosen


def build_plan(args: argparse.Namespace, run: BenchRun, workdir: Path) -> Plan:
    quick = args.quick
    only = selected_cases(args.only, quick)
    # The RTSP camera is 1080p: its ratios need that floor even when no other case runs at 1080p.
    sizes = ["720p"] if quick and "rtsp" not in only else ["720p", "1080p"]
    plan = Plan()
    cases = Cases(plan, run, workdir, quick)
    per_case = cases.timing.warm + cases.timing.measure + (4 if quick else 6)
    for size in sizes:
        plan.add(f"codec floor {size}", 3 if quick else 8, partial(cases.floor, size))
    if "framebus" in only:
        for size, transport in itertools.product(sizes, ("redis", "http")):
            plan.add(
                f"framebus {transport} {size}", 2 * per_case + 2, partial(cases.framebus, transport, size)
            )
        # Issue 10: HTTP ingest -> gateway -> Redis backplane -> WebSocket (the viewer), vs in memory.
        plan.add(
            "framebus http+backplane 720p", 2 * per_case + 2, partial(cases.framebus, "http", "720p", True)
        )
    if "classic" in only:
        for kind, fps in itertools.product(("redis", "http"), (0.0,) if quick else (30.0, 0.0)):
            label = f"classic {kind} {'unpaced' if not fps else '30 fps'}"
            plan.add(label, per_case, partial(cases.classic, kind, fps))
    # The other cases are one step each: (case, label, estimated seconds).
    single: list[tuple[str, str, float, Callable[[], None]]] = [
        ("fanout", "fan-out 1/10/100 MJPEG readers", 3 * per_case + 4, cases.fanout),
        ("cameras", "cameras at 720p@15", 120, cases.cameras),
        ("watchers", "watchers: 6 cameras at 720p@15, 0..6 watched", 110, cases.watchers),
        ("on_demand", "capture on demand, a new watcher, sizes on demand", 45, cases.on_demand),
        ("rtsp", "1080p@30 from a real RTSP camera", 60, cases.rtsp),
        ("replicas", "WebSocket subscribers carried by 1 and 2 gateway replicas", 150, cases.replicas),
        (
            "capacity",
            "bus capacity: cameras x subscribers, one Redis vs a 3-master cluster",
            240,
            cases.capacity,
        ),
        ("library", "client library overhead and worker pool", 32 if quick else 52, cases.library),
    ]
    for case, label, estimate, step in single:
        if case in only:
            plan.add(label, estimate, step)
    return plan


def write_outputs(run: BenchRun, stamp: str, workdir: Path) -> None:
    """The JSON, the table, the plots; and where they are."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    json_path = RESULTS / f"{stamp}.json"
    run.write_json(json_path)
    print(report.table(run))
    lines = [f"results: {json_path}"]
    if png := report.plot(run, RESULTS / f"{stamp}.png"):
        lines.append(f"plot:    {png}")
    if run.cameras or run.fanout or run.watchers:
        title = f"framebus cost curves {run.started} ({run.machine.cpus} cores)"
        path = RESULTS / f"{stamp}-curves.png"
        if curves := plot_curves(
            run.cameras, run.fanout, run.watchers, path, cores=run.machine.cpus, title=title
        ):
            lines.append(f"curves:  {curves}")
    print("\n" + "\n".join([*lines, f"logs:    {workdir}"]))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="720p only, short cases (under a minute)")
    parser.add_argument("--only", default="", help=f"comma list of: {', '.join(CASES)}")
    args = parser.parse_args()
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    workdir = CACHE / "runs" / stamp
    run = BenchRun(
        started=dt.datetime.now().isoformat(timespec="seconds"),
        machine=Machine(cpus=os.cpu_count(), platform=platform.platform(), node=platform.node()),
        quick=args.quick,
    )
    plan = build_plan(args, run, workdir)
    failures = run.failures = plan.run()
    run.seconds = round(time.monotonic() - plan.started, 1)
    write_outputs(run, stamp, workdir)
    if failures:
        print(f"\n{len(failures)} case(s) FAILED:\n  " + "\n  ".join(f.splitlines()[0] for f in failures))
        raise SystemExit(1)


if __name__ == "__main__":
    main()
