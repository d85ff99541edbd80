"""The bench's verdicts: each target is written once, and the printed text says what was checked."""

from __future__ import annotations

import json
from pathlib import Path

from bench.report import ratios, table
from bench.results import BenchRun, Delivery, Floor, FramebusResult, Latency, Machine
from bench.verdicts import Target


def floor_720p() -> Floor:
    # encode 2 ms, render 4 ms: latency floor 6 ms, at most 250 fps.
    return Floor(
        encode_s=0.002,
        decode_s=0.002,
        resize_s=0.001,
        reencode_s=0.001,
        render_s=0.004,
        latency_floor_s=0.006,
        max_fps_floor=250.0,
        jpeg_bytes=80_000,
    )


def framebus(mode: str, fps: float, p50: float, p99: float, delivered: float) -> FramebusResult:
    return FramebusResult(
        case=f"framebus-redis-720p-{mode}",
        transport="redis",
        size="720p",
        mode=mode,
        fps=fps,
        latency=Latency(
            p50_ms=p50, p95_ms=p99, p99_ms=p99, max_ms=p99, encode_ms=2, transport_ms=0.3, render_ms=4
        ),
        cpu_ms_per_frame={"capture": 2.0, "viewer": 5.0, "total": 7.5},
        cpu_cores_busy=0.5,
        peak_rss_mib={"capture": 80.0, "viewer": 90.0},
        fps_timeline=[fps],
        latency_ms_samples=[p50],
        seconds=3.0,
        source_fps=fps,
        delivered_fraction=delivered,
        delivery=Delivery(shown=99, spanned=100, gap_drop_fraction=0.01, min_camera_source_fps=30),
        bytes_per_frame=80_000,
        drops={},
        api_stats={"seq": 1},
    )


def run_with(*cases: FramebusResult) -> BenchRun:
    run = BenchRun(started="2026-11-30T09:00:00", machine=Machine(cpus=2, platform="x", node="y"), quick=True)
    run.floor["720p"] = floor_720p()
    run.framebus.extend(cases)
    return run


def line(lines: list[str], label: str) -> str:
    (found,) = [text for text in lines if label in text]
    return found


def test_a_target_prints_the_comparison_it_checks() -> None:
    assert str(Target(">=", 0.99)) == ">= 0.99"
    assert str(Target("<=", 2)) == "<= 2"
    assert Target("<", 0.15).met(0.1) and not Target("<", 0.15).met(0.15)
    assert Target(">=", 200).verdict(199.9) == "MISSED"


def test_verdicts_follow_the_figures() -> None:
    lines = ratios(run_with(framebus("camera", 30, p50=8.0, p99=20.0, delivered=0.995)))
    assert line(lines, "camera rate: delivered fraction").split()[-4:] == ["target", ">=", "0.99", "MET"]
    # p99 is 2.5 x p50: the target (issue 15: 1.5) is missed and says which bound it missed.
    assert line(lines, "p99 / p50").split()[-4:] == ["target", "<=", "1.5", "MISSED"]
    # 8 ms against a 6 ms floor: 1.33 > 1.25.
    assert line(lines, "p50 / codec floor").split()[-3:] == ["<=", "1.25", "MISSED"]


def test_max_rate_targets_and_the_table_render() -> None:
    run = run_with(framebus("max", 210, p50=9.0, p99=12.0, delivered=0.5))
    lines = ratios(run)
    assert line(lines, "max rate: fps").endswith("MET")
    assert line(lines, "fraction of 1/(slowest stage)").split()[-4:] == ["target", ">=", "0.9", "MISSED"]
    assert "framebus-redis-720p-max" in table(run)


def test_the_json_keeps_the_keys_of_earlier_result_files(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    run_with(framebus("camera", 30, p50=8.0, p99=9.0, delivered=1.0)).write_json(path)
    saved = json.loads(path.read_text())
    assert {"started", "machine", "quick", "floor", "framebus", "classic", "fanout", "cameras"} <= set(saved)
    case = saved["framebus"][0]
    assert case["latency"]["p99_ms"] == 9.0
    assert {"delivered_fraction", "cpu_ms_per_frame", "peak_rss_mib", "drops", "size", "mode"} <= set(case)
    assert saved["floor"]["720p"]["max_fps_floor"] == 250.0
