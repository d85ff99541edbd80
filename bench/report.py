"""The bench's outputs: progress lines, the final table with the ratios that matter, JSON, PNG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Result = dict[str, Any]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def one_line(r: Result) -> str:
    lat = r["latency"]
    total = r["cpu_ms_per_frame"].get("total")
    return (
        f"{r['case']}: {r['fps']:.1f} fps, p50/p95/p99 {_ms(lat['p50_ms'])}/{_ms(lat['p95_ms'])}/"
        f"{_ms(lat['p99_ms'])} ms, CPU {_ms(total)} ms/frame"
    )


def _cpu(r: Result, *names: str) -> str:
    per = r["cpu_ms_per_frame"]
    return "/".join(_ms(per.get(n)) for n in names if n in per)


def framebus_rows(results: Result) -> list[str]:
    head = (
        f"{'case':34} {'fps':>6} {'deliv':>6} {'p50':>5} {'p95':>5} {'p99':>5}  {'enc/tr/rend ms':>15}  "
        f"{'CPU ms/frame cap/up/view=total':>31} {'KiB/fr':>6} {'RSS MiB cap/up/view':>20}  drops"
    )
    rows = [head, "-" * len(head)]
    for r in results["framebus"]:
        lat, rss = r["latency"], r["peak_rss_mib"]
        up = "redis-server" if r["transport"] == "redis" else "gateway"
        cpu = r["cpu_ms_per_frame"]
        cpu_text = (
            f"{_ms(cpu.get('capture'))}/{_ms(cpu.get(up))}/{_ms(cpu.get('viewer'))}={_ms(cpu.get('total'))}"
        )
        stages = f"{_ms(lat['encode_ms'])}/{_ms(lat['transport_ms'])}/{_ms(lat['render_ms'])}"
        rss_text = "/".join(f"{rss.get(n, 0):.0f}" for n in ("capture", up, "viewer"))
        drops = ", ".join(f"{k}={v:.0f}" for k, v in r["drops"].items()) or "none"
        kib = f"{r['bytes_per_frame'] / 1024:.0f}" if r.get("bytes_per_frame") else "-"
        rows.append(
            f"{r['case']:34} {r['fps']:6.1f} {r['delivered_fraction']:6.1%} {_ms(lat['p50_ms']):>5} "
            f"{_ms(lat['p95_ms']):>5} {_ms(lat['p99_ms']):>5}  {stages:>15}  {cpu_text:>31} {kib:>6} "
            f"{rss_text:>20}  {drops}"
        )
    for r in results["classic"]:
        lat = r["latency"]
        cpu_text = (
            f"{_cpu(r, 'sender', 'redis-server', 'receiver')}={_ms(r['cpu_ms_per_frame'].get('total'))}"
        )
        rows.append(
            f"{r['case']:34} {r['fps']:6.1f} {'':>6} {_ms(lat['p50_ms']):>5} {_ms(lat['p95_ms']):>5} "
            f"{_ms(lat['p99_ms']):>5}  {'':>15}  {cpu_text:>31}"
        )
    return rows


def _find(results: Result, key: str, transport: str, size: str, mode: str) -> Result | None:
    found: list[Result] = [
        r for r in results[key] if r["transport"] == transport and r["size"] == size and r["mode"] == mode
    ]
    return found[0] if found else None


def ratios(results: Result) -> list[str]:
    """The issue's targets, each with this run's figure and a verdict."""
    lines = []

    def check(label: str, value: float | None, target: str, ok: bool | None) -> None:
        shown = "-" if value is None else f"{value:.2f}"
        verdict = "n/a" if ok is None else ("MET" if ok else "MISSED")
        lines.append(f"  {label:58} {shown:>8}  target {target:12} {verdict}")

    classic_max = [r["fps"] for r in results["classic"] if r["mode"] == "max"]
    classic_cpu = next(
        (r["cpu_ms_per_frame"]["total"] for r in results["classic"] if r["case"] == "classic-redis-30fps"),
        next(
            (r["cpu_ms_per_frame"]["total"] for r in results["classic"] if r["transport"] == "classic-redis"),
            None,
        ),
    )
    for size, floor in results["floor"].items():
        lines.append(
            f"{size}: codec floor {floor['latency_floor_s'] * 1e3:.2f} ms/frame (encode "
            f"{floor['encode_s'] * 1e3:.2f} + render {floor['render_s'] * 1e3:.2f}), "
            f"max {floor['max_fps_floor']:.0f} fps"
        )
        for transport in ("redis", "http"):
            cam = _find(results, "framebus", transport, size, "camera")
            top = _find(results, "framebus", transport, size, "max")
            if cam:
                p50, p99 = cam["latency"]["p50_ms"], cam["latency"]["p99_ms"]
                floor_ms = floor["latency_floor_s"] * 1e3
                check(
                    f"{transport} {size} camera rate: delivered fraction",
                    cam["delivered_fraction"],
                    ">= 0.99",
                    cam["delivered_fraction"] >= 0.99,
                )
                if p50 is not None and p99 is not None:
                    check(
                        f"{transport} {size} camera rate: p50 / codec floor",
                        p50 / floor_ms,
                        f"<= {1.5 + 1 / floor_ms:.2f}",
                        p50 <= 1.5 * floor_ms + 1,
                    )
                    check(f"{transport} {size} camera rate: p99 / p50", p99 / p50, "<= 2", p99 <= 2 * p50)
                if classic_cpu:
                    total = cam["cpu_ms_per_frame"]["total"]
                    check(
                        f"{transport} {size} camera rate: CPU/frame vs classic redis",
                        total / classic_cpu,
                        "<= 0.5",
                        total <= 0.5 * classic_cpu,
                    )
            if top:
                check(
                    f"{transport} {size} max rate: fps",
                    top["fps"],
                    ">= 200" if size == "720p" else "",
                    top["fps"] >= 200 if size == "720p" else None,
                )
                check(
                    f"{transport} {size} max rate: fraction of 1/(slowest stage)",
                    top["fps"] / floor["max_fps_floor"],
                    ">= 0.75",
                    top["fps"] >= 0.75 * floor["max_fps_floor"],
                )
                if classic_max and size == "720p":
                    check(
                        f"{transport} {size} max rate: x best classic unpaced",
                        top["fps"] / max(classic_max),
                        ">= 3",
                        top["fps"] >= 3 * max(classic_max),
                    )
    fan = {r["readers"]: r for r in results["fanout"]}
    if 1 in fan and max(fan) > 1:
        most = max(fan)
        extra = fan[most]["viewer_cpu_per_second"] / fan[1]["viewer_cpu_per_second"] - 1
        check(
            f"fan-out: viewer CPU with {most} readers vs 1 (extra, fraction)",
            extra,
            "< 0.15" if most == 100 else "",
            extra < 0.15 if most == 100 else None,
        )
    if results.get("cameras"):
        cams = results["cameras"]
        check(
            f"cameras carried at 720p@{cams['fps_per_camera']:g} fps (< 1% drops)", cams["carried"], "", None
        )
    return lines


def table(results: Result) -> str:
    out = ["", "framebus vs classic (fps delivered at 600x600; latency capture -> 600x600 ready, ms)"]
    out += framebus_rows(results)
    if results["fanout"]:
        out += ["", "fan-out (one 720p camera at 30 fps, N MJPEG readers)"]
        for r in results["fanout"]:
            out.append(
                f"  {r['readers']:4d} readers: viewer {r['viewer_cpu_per_second']:.3f} CPU-s/s "
                f"({_ms(r['viewer_cpu_ms_per_frame'])} ms/frame), "
                f"readers {r['readers_cpu_per_second']:.3f} CPU-s/s, "
                f"slowest reader {r['min_parts_per_reader']} parts"
            )
    if results.get("cameras"):
        out += ["", f"cameras at 720p@{results['cameras']['fps_per_camera']:g} fps (redis, one viewer)"]
        for row in results["cameras"]["steps"]:
            out.append(
                f"  {row['cameras']:3d}: {'ok    ' if row['ok'] else 'NOT OK'} "
                f"drops {row['gap_drop_fraction']:.2%}, "
                f"slowest source {row['min_camera_source_fps']:.1f} fps, CPU {row['cpu_utilisation']:.0%}"
            )
    out += ["", "targets (issue 4), this run:", *ratios(results)]
    return "\n".join(out)


def write_json(results: Result, path: Path) -> None:
    path.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n")


def plot(results: Result, path: Path) -> Path | None:
    """Latency distribution per transport (camera rate) and fps over time; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (bench extra): no plot")
        return None
    cases = results["framebus"] + results["classic"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5.5))
    for r in cases:
        samples = sorted(r.get("latency_ms_samples") or [])
        if r["mode"] != "camera" or not samples:
            continue
        ys = [(i + 1) / len(samples) for i in range(len(samples))]
        style = "--" if r["case"].startswith("classic") else "-"
        left.plot(samples, ys, style, label=f"{r['case']} (p50 {r['latency']['p50_ms']:.1f} ms)")
    for size, floor in results["floor"].items():
        left.axvline(floor["latency_floor_s"] * 1e3, ls=":", color="grey")
        left.text(floor["latency_floor_s"] * 1e3, 0.02, f" floor {size}", color="grey", fontsize=8)
    left.set(
        xscale="log",
        xlabel="end-to-end latency, ms (log)",
        ylabel="fraction of frames",
        title="Latency at camera rate (30 fps source), CDF",
    )
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=7)
    for r in cases:
        timeline = r.get("fps_timeline") or []
        if timeline:
            style = "--" if r["case"].startswith("classic") else "-"  # 12 cases, 10 colours
            right.plot(range(len(timeline)), timeline, style, marker=".", label=r["case"])
    right.set(
        xlabel="seconds into the measurement",
        ylabel="frames ready per second (600x600)",
        title="Delivered fps over time",
    )
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize=7)
    fig.suptitle(f"framebus bench {results['started']} ({results['machine']['cpus']} cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
