"""`make soak`: the whole system at 720p@30 on both transports for SOAK_MINUTES; memory must stay flat.

redis-server, gateway, one capture (TRANSPORT=both, synthetic 1280x720 at 30 fps) and one viewer
per transport. Every 10 s: VmRSS of each process and the frames each viewer rendered.
Fails (exit 1) when a process dies, a viewer stops rendering, or a process's RSS at the end is
more than max(30 MiB, 20%) above its RSS after the warm-up (the first minute, or a third of a
short run): startup allocations settle during the warm-up, a leak keeps growing after it.
Writes bench/results/soak-<timestamp>.json.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from bench.clip import CACHE
from bench.procs import Proc, Redis, Service, ServiceDied, metric_sum

RESULTS = Path(__file__).resolve().parent / "results"
SAMPLE_SECONDS = 10.0
GROWTH_MIB = 30.0
GROWTH_FRACTION = 0.20


def start(workdir: Path) -> dict[str, Proc]:
    procs: dict[str, Proc] = {}
    redis = procs["redis-server"] = Redis(workdir)
    gateway = Service("gateway", {"LOG_LEVEL": "WARNING"}, workdir)
    procs["gateway"] = gateway
    gateway.wait_status("/livez")
    common = {"REDIS_URL": redis.url, "GATEWAY_URL": gateway.url, "LOG_LEVEL": "WARNING"}
    for transport in ("redis", "http"):
        viewer = Service("viewer", {**common, "TRANSPORT": transport}, workdir, f"viewer-{transport}")
        procs[viewer.name] = viewer
    capture_env = {**common, "TRANSPORT": "both", "CAPTURE_SOURCE": "synthetic", "CAPTURE_FPS": "30"}
    procs["capture"] = Service("capture", capture_env, workdir)
    for proc in procs.values():
        if isinstance(proc, Service):
            proc.wait_status("/readyz", 60)
    return procs


def rendered(viewer: Proc) -> float:
    assert isinstance(viewer, Service)
    return metric_sum(viewer.metrics(), "framebus_frames_rendered_total")


@dataclass(frozen=True, kw_only=True)
class MemoryVerdict:
    """One process's RSS over the soak, MiB; ``ok`` when the drift after warm-up is allowed."""

    start_mib: float
    after_warmup_mib: float
    end_mib: float
    max_mib: float
    drift_mib: float
    allowed_mib: float
    ok: bool


def verdict(samples: list[dict[str, float]], warmup_index: int) -> dict[str, MemoryVerdict]:
    out = {}
    for name in samples[0]:
        if name == "t":
            continue
        series = [s[name] for s in samples]
        base, end = series[warmup_index], series[-1]
        allowed = max(GROWTH_MIB, GROWTH_FRACTION * base)
        out[name] = MemoryVerdict(
            start_mib=series[0],
            after_warmup_mib=base,
            end_mib=end,
            max_mib=max(series),
            drift_mib=round(end - base, 1),
            allowed_mib=round(allowed, 1),
            ok=end - base <= allowed,
        )
    return out


def main() -> None:
    minutes = float(os.environ.get("SOAK_MINUTES", "10"))
    duration = minutes * 60
    warmup = min(60.0, duration / 3)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    workdir = CACHE / "runs" / f"soak-{stamp}"
    print(f"soak: {minutes:g} min at 720p@30, both transports; warm-up {warmup:.0f}s; logs in {workdir}")
    procs = start(workdir)
    samples: list[dict[str, float]] = []
    frames = {n: rendered(p) for n, p in procs.items() if n.startswith("viewer")}
    failures: list[str] = []
    started = time.monotonic()
    warmup_index = 0
    try:
        while (elapsed := time.monotonic() - started) < duration:
            time.sleep(min(SAMPLE_SECONDS, max(0.0, duration - elapsed)))
            for proc in procs.values():
                proc.check()
            sample = {"t": round(time.monotonic() - started, 1)}
            sample |= {n: round(p.memory_kib("VmRSS") / 1024, 1) for n, p in procs.items()}
            samples.append(sample)
            if sample["t"] <= warmup:
                warmup_index = len(samples) - 1
            now = {n: rendered(procs[n]) for n in frames}
            stalled = [n for n in frames if now[n] <= frames[n]]
            if stalled:
                failures.append(f"{', '.join(stalled)} rendered nothing in the last {SAMPLE_SECONDS:g}s")
                break
            rates = ", ".join(f"{n} {(now[n] - frames[n]) / SAMPLE_SECONDS:.1f} fps" for n in frames)
            frames = now
            rss = ", ".join(f"{n} {v:.0f}" for n, v in sample.items() if n != "t")
            print(f"[{sample['t']:6.0f}s / {duration:.0f}s] RSS MiB: {rss}; {rates}", flush=True)
    except ServiceDied as exc:
        failures.append(f"a process died: {exc}")
        print(f"!! {exc}")
    finally:
        for proc in reversed(list(procs.values())):
            proc.stop()
    memory = verdict(samples, warmup_index) if samples else {}
    for name, row in memory.items():
        print(
            f"  {name:14} start {row.start_mib:7.1f}  after warm-up {row.after_warmup_mib:7.1f}  "
            f"end {row.end_mib:7.1f}  max {row.max_mib:7.1f}  drift {row.drift_mib:+6.1f} MiB "
            f"(allowed {row.allowed_mib:.0f})  {'ok' if row.ok else 'GROWING'}"
        )
        if not row.ok:
            failures.append(f"{name} RSS grew {row.drift_mib} MiB after warm-up")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"soak-{stamp}.json"
    memory_json = {name: dataclasses.asdict(row) for name, row in memory.items()}
    result = {"minutes": minutes, "warmup_seconds": warmup, "memory": memory_json, "samples": samples}
    path.write_text(json.dumps({**result, "failures": failures}, indent=1) + "\n")
    print(f"results: {path}")
    if failures:
        print("SOAK FAILED:\n  " + "\n  ".join(failures))
        raise SystemExit(1)
    print("soak passed")


if __name__ == "__main__":
    main()
