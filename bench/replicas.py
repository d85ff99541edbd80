"""Fan-out across gateway replicas: how many WebSocket subscribers 1 and 2 replicas carry.

The issue's target: 2 gateway replicas carry >= 1.8x the WebSocket subscribers of one at the
same per-frame latency. One redis-server, one capture publishing a 720p clip at 30 fps onto the
bus, two gateways with GATEWAY_BACKPLANE=redis (each reads the camera from Redis once and fans
it out to its own subscribers). For each replica count the subscriber count K is searched:
doubled until a step is not carried, then bisected.

A step carries K subscribers when, over the measured window, every subscriber stayed connected
and received >= 95% of the frames the camera published, the camera itself kept >= 95% of its
30 fps (a starved camera means the cores are saturated), and the p50 latency (capture handed
the frame to the bus -> the subscriber's process read it) is at most the 1-replica baseline p50
(the first, lightest step) + LATENCY_SLACK_MS: "the same per-frame latency".

Each gateway in use keeps one idle pull-mode subscriber (it is sent nothing) for the whole
sweep, so steps never take a gateway down to no subscribers and back: that is not what is
measured here. (Doing so once left a camera with two Redis readers, a bug since fixed; the
subscribers still count duplicate frames apart and the gateways' sequence restarts are reported.)

The subscribers are LOAD_GENERATORS processes (bench/ws_subscribers.py) in both configurations,
half of them on each replica with 2 (so the client side is the same size whichever is measured).
Each is one event loop reading its subscribers in turn, so its share of the subscribers adds
latency of its own; enough of them keep that small against the gateways' fan-out.

Each replica gets a CPU budget of REPLICA_CPU_BUDGET cores (bench/cpu_budget.py, root only), as
a host of its own would give it. Without budgets, on a 2-core machine the replicas, the load
generators, capture and Redis share the cores: one gateway is not what runs out (it used 0.52
cores at its limit of 250 subscribers), the whole box is, and a second replica on the same cores
cannot relieve it (measured: 218 vs 250). With budgets the replica is the bottleneck, and two of
them need no more than the box has. Where budgets cannot be set the case runs without them and
says so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import signal
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bench.clip import CACHE, FPS, clip_path
from bench.cpu_budget import CpuBudget, budget_unavailable
from bench.procs import (
    CpuWindow,
    Proc,
    Redis,
    Service,
    ServiceDied,
    drops_by_reason,
    hold,
    metric_sum,
    wait_for,
)
from bench.results import ReplicasResult, ReplicaStep
from bench.verdicts import Target, Verdicts, ms_text

ROOT = Path(__file__).resolve().parents[1]
CAMERA = "cam0"
CAMERA_LABEL = "720p@30"
CLIP_SIZE = (1280, 720)
CLIP_SECONDS = 10
MIN_FRAME_FRACTION = 0.95  # of the camera's frames, for every subscriber
MIN_CAMERA_FRACTION = 0.95  # of FPS, published by the camera in the window
# "The same per-frame latency": p50 within this of the 1-replica baseline; a third of a 30 fps
# frame interval, chosen before measuring (a bound, not a fit to one machine's figures).
LATENCY_SLACK_MS = 10.0
LOAD_GENERATORS = 8
# Cores per gateway replica: small enough that two replicas and the client side fit in 2 cores.
REPLICA_CPU_BUDGET = 0.2
MAX_REPLICAS = 2
RATIO_TARGET = Target(">=", 1.8)
MIN_GAP = 2  # subscribers: the search stops once the limit is known to within this ...
P = TypeVar("P", bound=Proc)


@dataclass(frozen=True)
class SweepPlan:
    start: int  # the first (baseline) subscriber count
    precision: float  # ... or to within this fraction of the carried count
    max_probes: int  # per replica count
    max_subscribers: int
    warm: float  # seconds between all subscribers connected and the window
    measure: float  # seconds measured per step


QUICK = SweepPlan(start=25, precision=0.05, max_probes=9, max_subscribers=1600, warm=1.0, measure=2.5)
FULL = SweepPlan(start=25, precision=0.05, max_probes=10, max_subscribers=3200, warm=2.0, measure=5.0)


# --- the search and the judgement (pure) -------------------------------------------------


def limits(steps: list[ReplicaStep]) -> tuple[int, int | None]:
    """(most subscribers carried with no failed step at or below it, fewest subscribers failed)."""
    failed = [s.subscribers for s in steps if not s.carried]
    lowest_failed = min(failed) if failed else None
    carried = [
        s.subscribers for s in steps if s.carried and (lowest_failed is None or s.subscribers < lowest_failed)
    ]
    return max(carried, default=0), lowest_failed


def next_probe(carried: int, failed: int | None, start: int, precision: float, cap: int) -> int | None:
    """The next subscriber count to try, or None once the limit is known closely enough."""
    if failed is None:
        probe = start if carried == 0 else min(carried * 2, cap)
        return probe if probe > carried else None
    if failed - carried <= max(MIN_GAP, precision * carried):
        return None
    return (carried + failed) // 2


def judge(step: ReplicaStep, fps: float, latency_bound_ms: float | None) -> ReplicaStep:
    """The step with ``carried`` and ``reason`` set (see the module's docstring)."""
    reasons = []
    if step.failed_connects:
        reasons.append(f"{step.failed_connects} could not connect")
    if step.open_at_end < step.subscribers - step.failed_connects:
        reasons.append(f"{step.subscribers - step.failed_connects - step.open_at_end} closed")
    if step.min_frame_fraction < MIN_FRAME_FRACTION:
        reasons.append(f"slowest subscriber got {step.min_frame_fraction:.0%} of the frames")
    if step.camera_fps < MIN_CAMERA_FRACTION * fps:
        reasons.append(f"camera published {step.camera_fps:.1f} fps (cores saturated)")
    p50 = step.latency_p50_ms
    if latency_bound_ms is not None and (p50 is None or p50 > latency_bound_ms):
        reasons.append(f"p50 {'-' if p50 is None else f'{p50:.1f}'} ms > {latency_bound_ms:.1f} ms")
    return dataclasses.replace(step, carried=not reasons, reason="; ".join(reasons))


def bucket_percentile(buckets: Counter[int], bucket_ms: float, q: float) -> float | None:
    """Nearest-rank percentile of a latency histogram, as its bucket's upper edge (ms)."""
    total = sum(buckets.values())
    if not total:
        return None
    rank = max(1, math.ceil(q / 100 * total))
    seen = 0
    for bucket in sorted(buckets):
        seen += buckets[bucket]
        if seen >= rank:
            return round((bucket + 1) * bucket_ms, 3)
    raise AssertionError("unreachable: the ranks add up to the total")


def split(total: int, parts: int) -> list[int]:
    """``total`` spread over ``parts`` as evenly as integers allow."""
    return [total // parts + (i < total % parts) for i in range(parts)]


def carried_ratio(carried: dict[str, int]) -> float | None:
    one, two = carried.get("1", 0), carried.get("2", 0)
    return round(two / one, 3) if one else None


def ratio_at_least(carried: dict[str, int], one_failed_at: int | None) -> float | None:
    """2 replicas' carried count over the fewest subscribers 1 replica failed: the ratio's lower
    bound, whatever the search's resolution (None when 1 replica's limit was not found)."""
    return round(carried.get("2", 0) / one_failed_at, 3) if one_failed_at else None


# --- processes ---------------------------------------------------------------------------


class ReplicaStack:
    """redis-server, one capture at 30 fps onto the bus, ``replicas`` gateways on the backplane."""

    def __init__(self, workdir: Path, clip: Path, replicas: int, cpu_budget: float | None) -> None:
        self.workdir = workdir
        self.procs: list[Proc] = []
        self.budgets: list[CpuBudget] = []
        try:
            self.redis = self._started(Redis(workdir))
            env = {"LOG_LEVEL": "WARNING", "REDIS_URL": self.redis.url}
            capture_env = {
                **env,
                "TRANSPORT": "redis",
                "CAMERA_ID": CAMERA,
                "CAPTURE_SOURCE": str(clip),
                "CAPTURE_FPS": str(FPS),
                # Pre-decoded, as in the other cases: the camera's own decode is not the bus's work.
                "CAPTURE_PRELOAD_FRAMES": "60",
            }
            self.capture = self._started(Service("capture", capture_env, workdir))
            gateway_env = {**env, "GATEWAY_BACKPLANE": "redis"}
            self.gateways = [
                self._started(Service("gateway", gateway_env, workdir, label=f"gateway-{i}"))
                for i in range(replicas)
            ]
            for service in (self.capture, *self.gateways):
                service.wait_status("/readyz", 60)
            if cpu_budget is not None:
                for gateway in self.gateways:
                    self.budgets.append(CpuBudget(f"framebus-bench-{os.getpid()}-{gateway.name}", cpu_budget))
                    self.budgets[-1].add(gateway.pid)
        except BaseException:
            self.close()
            raise

    def _started(self, proc: P) -> P:
        self.procs.append(proc)  # at once, so close() stops it whatever fails next
        return proc

    def subscribers(self, gateways: list[Service]) -> float:
        return sum(metric_sum(g.metrics(), "framebus_subscribers", camera=CAMERA) for g in gateways)

    def close(self) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(Exception):
                proc.stop()
        for budget in self.budgets:
            with contextlib.suppress(OSError):
                budget.close()


def _json_line(proc: Proc, key: str) -> dict[str, Any] | None:
    """The last JSON line of the process's log that has ``key``."""
    for line in reversed(proc.log_path.read_text(errors="replace").splitlines()):
        if line.startswith("{") and f'"{key}"' in line:
            value = json.loads(line)
            return value if isinstance(value, dict) else None
    return None


@dataclass(frozen=True)
class GeneratorFigures:
    """One subscribers' process's window (its JSON line, see bench/ws_subscribers.py)."""

    frames: list[int]  # distinct frames per subscriber
    duplicates: int  # frames received again, all subscribers together
    open: int
    expected: int  # the camera's frames in its window
    buckets: Counter[int]  # latency histogram
    bucket_ms: float

    @classmethod
    def parse(cls, line: dict[str, Any]) -> GeneratorFigures:
        return cls(
            frames=[int(n) for n in line["frames"]],
            duplicates=int(line["duplicates"]),
            open=int(line["open"]),
            expected=int(line["expected"]),
            buckets=Counter({int(k): int(v) for k, v in line["latency_buckets"].items()}),
            bucket_ms=float(line["latency_bucket_ms"]),
        )


def _start_generators(
    stack: ReplicaStack, gateways: list[Service], subscribers: int, generators: list[Proc]
) -> None:
    """LOAD_GENERATORS processes into ``generators`` (each at once, for the caller to stop),
    generator i on replica i mod len(gateways)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for i, count in enumerate(split(subscribers, LOAD_GENERATORS)):
        argv = [sys.executable, "-m", "bench.ws_subscribers", "--count", str(count), "--camera", CAMERA]
        argv.append(gateways[i % len(gateways)].url)
        name = f"subscribers-r{len(gateways)}-n{subscribers}-{i}"
        generators.append(Proc(name, argv, env, stack.workdir))


def _wait_connected(stack: ReplicaStack, gateways: list[Service], generators: list[Proc], n: int) -> int:
    """Until every generator has tried all its ``n`` connections and the gateways count the open
    ones (beside their anchors); returns how many failed to connect."""
    procs = [*stack.procs, *generators]
    seconds = 20 + n / 40  # connecting is batched (bench/ws_subscribers.py)

    def reported() -> list[dict[str, Any]] | None:
        for proc in procs:
            proc.check()
        lines = [_json_line(g, "connected") for g in generators]
        return None if None in lines else [line for line in lines if line is not None]

    wait_for(reported, seconds, "subscribers connected")
    failed = sum(int(line["failed"]) for line in reported() or [])
    counted = n - failed + len(gateways)  # + one anchor each
    wait_for(lambda: stack.subscribers(gateways) >= counted, seconds, "gateways counting the subscribers")
    return failed


@contextlib.contextmanager
def anchored(stack: ReplicaStack, gateways: list[Service]) -> Iterator[None]:
    """One idle pull-mode subscriber on each gateway meanwhile (see the module's docstring)."""
    argv = [sys.executable, "-m", "bench.ws_subscribers", "--pull", "--camera", CAMERA]
    argv += ["--count", str(len(gateways)), *(g.url for g in gateways)]
    anchor = Proc(f"anchors-r{len(gateways)}", argv, {**os.environ, "PYTHONPATH": str(ROOT)}, stack.workdir)
    try:
        failed = _wait_connected(stack, gateways, [anchor], 0)
        if failed:
            raise ServiceDied(f"an anchor subscriber could not connect\n{anchor.log_tail()}")
        yield
    finally:
        anchor.stop()


@dataclass
class _Window:
    cpu: CpuWindow
    camera_fps: float
    drops: dict[str, float]
    figures: list[GeneratorFigures]


def _published(stack: ReplicaStack) -> float:
    return metric_sum(stack.capture.metrics(), "framebus_frames_published_total")


def _gateway_drops(gateways: list[Service]) -> dict[str, float]:
    out: dict[str, float] = {}
    for gateway in gateways:
        samples = gateway.metrics()
        counts = {
            **drops_by_reason(samples),
            "evicted": metric_sum(samples, "framebus_subscribers_evicted_total"),
            # A frame stored twice (two readers of one camera) looks like a producer restart.
            "sequence_restarts": metric_sum(samples, "framebus_sequence_restarts_total"),
        }
        for key, value in counts.items():
            out[key] = out.get(key, 0.0) + value
    return out


def _measure_window(
    stack: ReplicaStack, gateways: list[Service], generators: list[Proc], plan: SweepPlan
) -> _Window:
    procs = [*stack.procs, *generators]
    hold(plan.warm, procs)
    drops = _gateway_drops(gateways)
    # The capture's counter is read right at both ends, timed, so its rate is the window's.
    published, published_t0 = _published(stack), time.monotonic()
    cpu = CpuWindow(procs)
    for generator in generators:
        generator.popen.send_signal(signal.SIGUSR1)
    cpu.start()
    hold(plan.measure, procs)
    cpu.stop()
    for generator in generators:
        generator.popen.send_signal(signal.SIGTERM)  # ends each generator's window, together
    camera_fps = (_published(stack) - published) / (time.monotonic() - published_t0)
    after = _gateway_drops(gateways)
    for generator in generators:
        generator.stop()
    figures = []
    for generator in generators:
        line = _json_line(generator, "frames")
        if line is None:
            raise ServiceDied(f"{generator.name} printed no figures\n{generator.log_tail()}")
        figures.append(GeneratorFigures.parse(line))
    delta = {k: v - drops.get(k, 0.0) for k, v in after.items() if v - drops.get(k, 0.0)}
    return _Window(cpu, camera_fps, delta, figures)


def frame_fractions(figures: list[GeneratorFigures]) -> list[float]:
    """Each subscriber's frames / the camera's frames in its process's window."""
    return [n / f.expected if f.expected else 0.0 for f in figures for n in f.frames]


def latency_percentiles(figures: list[GeneratorFigures]) -> list[float | None]:
    """p50, p95, p99 (ms) over every subscriber's frames."""
    buckets: Counter[int] = Counter()
    for f in figures:
        buckets.update(f.buckets)
    bucket_ms = figures[0].bucket_ms if figures else 0.1
    return [bucket_percentile(buckets, bucket_ms, q) for q in (50, 95, 99)]


def _step(
    replicas: int, subscribers: int, failed: int, window: _Window, gateways: list[Service]
) -> ReplicaStep:
    """The raw figures of one window (not judged yet)."""
    cpu = window.cpu
    frames = [n for f in window.figures for n in f.frames]
    fractions = frame_fractions(window.figures)
    p50, p95, p99 = latency_percentiles(window.figures)

    def per_second(names: list[str]) -> float:
        return round(sum(cpu.seconds[n] for n in names) / cpu.wall, 3)

    generators = [name for name in cpu.seconds if name.startswith("subscribers-")]
    return ReplicaStep(
        replicas=replicas,
        subscribers=subscribers,
        carried=False,
        reason="not judged",
        seconds=round(cpu.wall, 2),
        failed_connects=failed,
        open_at_end=sum(f.open for f in window.figures),
        camera_fps=round(window.camera_fps, 2),
        expected_frames=max((f.expected for f in window.figures), default=0),
        min_frames=min(frames, default=0),
        duplicate_frames=sum(f.duplicates for f in window.figures),
        median_frames=statistics.median(frames) if frames else 0.0,
        min_frame_fraction=round(min(fractions, default=0.0), 4),
        median_frame_fraction=round(statistics.median(fractions), 4) if fractions else 0.0,
        latency_p50_ms=p50,
        latency_p95_ms=p95,
        latency_p99_ms=p99,
        gateway_cpu_per_second=[per_second([g.name]) for g in gateways],
        capture_cpu_per_second=per_second(["capture"]),
        redis_cpu_per_second=per_second(["redis-server"]),
        load_cpu_per_second=per_second(generators),
        cpu_utilisation=round(sum(cpu.seconds.values()) / cpu.wall / (os.cpu_count() or 1), 3),
        drops=window.drops,
    )


def measure_step(stack: ReplicaStack, replicas: int, subscribers: int, plan: SweepPlan) -> ReplicaStep:
    """``subscribers`` WebSocket subscribers on the first ``replicas`` gateways, measured once."""
    gateways = stack.gateways[:replicas]
    generators: list[Proc] = []
    try:
        _start_generators(stack, gateways, subscribers, generators)
        failed = _wait_connected(stack, gateways, generators, subscribers)
        window = _measure_window(stack, gateways, generators, plan)
    finally:
        for generator in generators:
            generator.stop()
    # The next step starts afresh: the gateways have dropped every one of these (anchors stay).
    wait_for(lambda: stack.subscribers(gateways) == len(gateways), 20, "gateways back to their anchors")
    return _step(replicas, subscribers, failed, window, gateways)


def _say_step(say: Callable[[str], None], step: ReplicaStep) -> None:
    verdict = "carried" if step.carried else f"NOT carried ({step.reason})"
    say(f"replicas {step.replicas}, {step.subscribers} subscribers: {verdict}; {_figures(step)}")


def sweep(
    stack: ReplicaStack,
    replicas: int,
    start: int,
    plan: SweepPlan,
    latency_bound_ms: float | None,
    say: Callable[[str], None],
) -> tuple[list[ReplicaStep], float | None]:
    """Steps for one replica count, and the latency bound (set from the first step when None)."""
    steps: list[ReplicaStep] = []
    probe: int | None = start
    with anchored(stack, stack.gateways[:replicas]):
        while probe is not None and len(steps) < plan.max_probes:
            step = measure_step(stack, replicas, probe, plan)
            if latency_bound_ms is None and not steps and step.latency_p50_ms is not None:
                latency_bound_ms = round(step.latency_p50_ms + LATENCY_SLACK_MS, 3)  # the baseline
            step = judge(step, FPS, latency_bound_ms)
            steps.append(step)
            _say_step(say, step)
            probe = next_probe(*limits(steps), plan.start, plan.precision, plan.max_subscribers)
    return steps, latency_bound_ms


def replicas_case(
    workdir: Path, quick: bool, say: Callable[[str], None], budget: bool = True
) -> ReplicasResult:
    """The subscribers 1 and 2 gateway replicas carry (see the module's docstring)."""
    plan = QUICK if quick else FULL
    started = time.monotonic()
    clip = clip_path(*CLIP_SIZE, CLIP_SECONDS)
    why_not = budget_unavailable() if budget else "not asked for"
    if why_not:
        say(f"replicas: no CPU budget per replica ({why_not}): they share the machine's cores")
    cpu_budget = None if why_not else REPLICA_CPU_BUDGET
    stack = ReplicaStack(workdir, clip, MAX_REPLICAS, cpu_budget)
    try:
        one, bound = sweep(stack, 1, plan.start, plan, None, say)
        carried_one, failed_one = limits(one)
        # Two replicas start where one stopped: the first doubling asks for a 2x ratio at once.
        two, _ = sweep(stack, 2, carried_one or plan.start, plan, bound, say)
    finally:
        stack.close()
    carried_two, failed_two = limits(two)
    carried = {"1": carried_one, "2": carried_two}
    return ReplicasResult(
        camera=f"{CAMERA} {CAMERA_LABEL}",
        fps=float(FPS),
        load_generators=LOAD_GENERATORS,
        cpus=os.cpu_count(),
        replica_cpu_budget=cpu_budget,
        no_budget_because=why_not,
        quick=quick,
        min_frame_fraction=MIN_FRAME_FRACTION,
        latency_slack_ms=LATENCY_SLACK_MS,
        baseline_p50_ms=one[0].latency_p50_ms if one else None,
        latency_bound_ms=bound,
        carried=carried,
        bounded={"1": failed_one is not None, "2": failed_two is not None},
        ratio=carried_ratio(carried),
        ratio_at_least=ratio_at_least(carried, failed_one),
        steps=[*one, *two],
        seconds=round(time.monotonic() - started, 1),
    )


# --- output ------------------------------------------------------------------------------


def _figures(step: ReplicaStep) -> str:
    cpu = "/".join(f"{c:.2f}" for c in step.gateway_cpu_per_second)
    return (
        f"frames min {step.min_frame_fraction:.0%} (median {step.median_frame_fraction:.0%} of "
        f"{step.expected_frames}), p50/p95 {ms_text(step.latency_p50_ms)}/{ms_text(step.latency_p95_ms)} ms, "
        f"gateway CPU-s/s {cpu}, subscribers' processes {step.load_cpu_per_second:.2f}, "
        f"camera {step.camera_fps:.1f} fps, all cores {step.cpu_utilisation:.0%}"
    )


def _notes(step: ReplicaStep) -> str:
    """Why the step was not carried, then any duplicates and gateway counters that moved."""
    notes = [step.reason] if step.reason else []
    if step.duplicate_frames:
        notes.append(f"{step.duplicate_frames} duplicate frames")
    notes += [f"{key}={value:.0f}" for key, value in sorted(step.drops.items())]
    return "; ".join(notes)


def carried_step(result: ReplicasResult, replicas: int) -> ReplicaStep | None:
    """The step at the most subscribers ``replicas`` carried."""
    count = result.carried.get(str(replicas), 0)
    return next((s for s in result.steps if s.replicas == replicas and s.subscribers == count), None)


def _summary(result: ReplicasResult, replicas: int) -> str:
    step = carried_step(result, replicas)
    name = f"{replicas} replica{'s' if replicas > 1 else ''}"
    if step is None:
        return f"  {name}: carried no step"
    _, failed = limits([s for s in result.steps if s.replicas == replicas])
    # The search's resolution: the true limit lies between what was carried and what was not.
    above = f"{failed} not" if failed is not None else "at least: no step failed above it"
    per_replica = step.subscribers / replicas
    cpu = ", ".join(f"{c:.2f}" for c in step.gateway_cpu_per_second)
    return (
        f"  {name}: {step.subscribers} subscribers carried ({above}; {per_replica:.0f} per replica), "
        f"p50/p95 {ms_text(step.latency_p50_ms)}/{ms_text(step.latency_p95_ms)} ms, "
        f"gateway CPU-s/s per replica {cpu}"
    )


def _budget_text(result: ReplicasResult) -> str:
    if result.replica_cpu_budget is None:
        return f"unbudgeted ({result.no_budget_because}): the replicas share the machine's cores"
    return f"a budget of {result.replica_cpu_budget:g} cores each (cgroup CPU quota), as on a host of its own"


def replicas_rows(result: ReplicasResult) -> list[str]:
    """The printed table: one line per step, then what each replica count carried."""
    head = (
        f"  {'rep':>3} {'subs':>5}  {'carried':7} {'frames min/med':>14} {'p50':>6} {'p95':>6} "
        f"{'gateway CPU-s/s':>15} {'subs CPU':>8} {'cam fps':>7} {'cores':>5}  why not; gateway counters"
    )
    rows = [
        f"gateway replicas: WebSocket subscribers of one {result.camera} camera (Redis backplane); "
        f"carried = every subscriber >= {result.min_frame_fraction:.0%} of the frames and p50 <= "
        f"{ms_text(result.latency_bound_ms)} ms (1-replica baseline {ms_text(result.baseline_p50_ms)} + "
        f"{result.latency_slack_ms:g} ms)",
        f"  latency: capture handed the frame to the bus -> read by a subscriber's process; "
        f"{result.load_generators} subscriber processes share the {result.cpus} cores with the gateways",
        f"  CPU per replica: {_budget_text(result)}",
        head,
    ]
    for s in result.steps:
        cpu = "/".join(f"{c:.2f}" for c in s.gateway_cpu_per_second)
        frames = f"{s.min_frame_fraction:.0%}/{s.median_frame_fraction:.0%}"
        rows.append(
            f"  {s.replicas:3d} {s.subscribers:5d}  {'yes' if s.carried else 'NO':7} {frames:>14} "
            f"{ms_text(s.latency_p50_ms):>6} {ms_text(s.latency_p95_ms):>6} {cpu:>15} "
            f"{s.load_cpu_per_second:8.2f} {s.camera_fps:7.1f} {s.cpu_utilisation:5.0%}  {_notes(s)}"
        )
    rows += [_summary(result, 1), _summary(result, 2)]
    return rows


def replicas_verdicts(result: ReplicasResult, out: Verdicts) -> None:
    out.check(f"replicas: WS subscribers carried by 1 gateway ({CAMERA_LABEL})", result.carried["1"])
    out.check(f"replicas: WS subscribers carried by 2 gateways ({CAMERA_LABEL})", result.carried["2"])
    out.check("replicas: subscribers carried, 2 replicas / 1", result.ratio, RATIO_TARGET)
    # The search's resolution (QUICK.precision) bounds how far the ratio can be off: stated.
    out.check("replicas: 2 replicas / 1, at least (2's carried / 1's failed)", result.ratio_at_least)


def main() -> None:
    """The quick case alone, for trying it out: python -m bench.replicas [--full] [--no-budget]."""
    quick = "--full" not in sys.argv[1:]
    workdir = CACHE / "runs" / f"replicas-{time.strftime('%Y%m%d-%H%M%S')}"
    budget = "--no-budget" not in sys.argv[1:]
    result = replicas_case(workdir, quick, lambda text: print(text, flush=True), budget)
    print("\n".join(replicas_rows(result)))
    out = Verdicts()
    replicas_verdicts(result, out)
    print("\n".join(out.lines))
    print(f"logs: {workdir}")


if __name__ == "__main__":
    main()
