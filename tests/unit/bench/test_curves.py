"""The cost curves: saved runs load (older ones too, without the curves' fields) and plot to a PNG."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from bench.curves import load_curves, main, plot_curves, unwatched_cost, watchers_rows, watchers_verdicts
from bench.results import (
    BenchRun,
    CamerasResult,
    CameraStep,
    FanoutResult,
    Machine,
    WatchersResult,
    WatchStep,
)
from bench.verdicts import Verdicts

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def camera_step(cameras: int, p50: float | None = 11.0) -> CameraStep:
    return CameraStep(
        cameras=cameras,
        ok=True,
        gap_drop_fraction=0.0,
        min_camera_source_fps=15.0,
        delivered_fps_total=15.0,
        cpu_utilisation=0.05 * cameras,
        drops={},
        latency_p50_ms=p50,
        latency_p95_ms=None if p50 is None else p50 + 2,
        cpu_cores_busy=0.1 * cameras,
        cpu_cores={"capture": 0.08 * cameras, "redis-server": 0.01, "viewer": 0.1},
    )


def fanout(readers: int) -> FanoutResult:
    return FanoutResult(
        case=f"fanout-{readers}",
        readers=readers,
        viewer_cpu_per_second=0.18 + readers / 1000,
        viewer_cpu_ms_per_frame=6.0,
        readers_cpu_per_second=0.01,
        fps=30.0,
        min_parts_per_reader=300,
        drops={},
        seconds=3.0,
        latency_p50_ms=11.5,
        latency_p95_ms=14.0,
        cpu_cores_busy=0.4,
        cpu_cores={"capture": 0.15, "redis-server": 0.01, "viewer": 0.2, f"readers-{readers}": 0.01},
    )


def watchers(count: int = 3) -> WatchersResult:
    steps = [
        WatchStep(
            watched=w,
            cpu_cores_busy=0.3 + 0.12 * w,
            cpu_cores={"capture": 0.25, "redis-server": 0.01, "viewer": 0.04 + 0.11 * w},
            latency_p50_ms=11.0 + w if w else None,  # nothing rendered with none watched
            latency_p95_ms=13.0 + w if w else None,
            rendered_fps=15.0 * w,
            gap_drop_fraction=0.0 if w else None,
            drops={"viewer:receive/superseded": 2.0} if w == count else {},
            seconds=3.0,
        )
        for w in range(count + 1)
    ]
    return WatchersResult(cameras=count, fps_per_camera=15.0, size="720p", steps=steps)


def saved_run(**parts: Any) -> dict[str, Any]:
    """A BenchRun as the bench writes it, with ``parts`` (cameras, fanout, ...) replaced."""
    run = BenchRun(started="2026-11-30T12:00:00", machine=Machine(cpus=2, platform="x", node="y"), quick=True)
    data = dataclasses.asdict(run)
    data.update(parts)
    return data


def test_curves_plot_to_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    cameras = CamerasResult(fps_per_camera=15.0, carried=4, steps=[camera_step(n) for n in (1, 2, 4, 8)])
    path = plot_curves(cameras, [fanout(1), fanout(10), fanout(100)], watchers(), tmp_path / "c.png", cores=2)
    assert path == tmp_path / "c.png"
    assert path.read_bytes().startswith(PNG_MAGIC)


def test_missing_parts_leave_their_panel_empty(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = plot_curves(None, [], None, tmp_path / "empty.png")
    assert path is not None and path.read_bytes().startswith(PNG_MAGIC)


def test_a_saved_run_loads_back_as_the_results_it_was() -> None:
    cameras = CamerasResult(fps_per_camera=15.0, carried=2, steps=[camera_step(1), camera_step(2)])
    data = saved_run(
        cameras=dataclasses.asdict(cameras),
        fanout=[dataclasses.asdict(fanout(1))],
        watchers=dataclasses.asdict(watchers()),
    )
    loaded = load_curves(json.loads(json.dumps(data)))  # through JSON, as from a file
    assert loaded.cameras == cameras
    assert loaded.fanout == [fanout(1)]
    assert loaded.watchers == watchers()


def test_older_files_without_the_new_fields_still_load() -> None:
    old_step = {
        "cameras": 4,
        "ok": True,
        "gap_drop_fraction": 0.0,
        "min_camera_source_fps": 15.0,
        "delivered_fps_total": 15.25,
        "cpu_utilisation": 0.218,
        "drops": {},
    }
    old_fanout = {k: v for k, v in dataclasses.asdict(fanout(10)).items() if not k.startswith(("lat", "cpu"))}
    data = saved_run(cameras={"fps_per_camera": 15.0, "carried": 4, "steps": [old_step]}, fanout=[old_fanout])
    data.pop("watchers", None)  # files before the watchers case have no such key
    loaded = load_curves(data)
    assert loaded.cameras is not None
    (step,) = loaded.cameras.steps
    assert step.latency_p50_ms is None and step.cpu_cores == {}
    assert step.cpu_cores_busy == pytest.approx(0.436)  # the share of all cores, times 2 cores
    assert loaded.fanout[0].readers == 10 and loaded.fanout[0].latency_p50_ms is None
    assert loaded.watchers is None


def test_records_missing_required_fields_are_skipped() -> None:
    data = saved_run(
        cameras={"fps_per_camera": 15.0, "carried": 0, "steps": [{"cameras": 1}]},
        fanout=[{"readers": 1}, dataclasses.asdict(fanout(100)), "garbage"],
        watchers={"cameras": 3, "steps": []},
    )
    loaded = load_curves(data)
    assert loaded.cameras is None  # no step was whole
    assert [f.readers for f in loaded.fanout] == [100]
    assert loaded.watchers is None


def test_watchers_rows_show_each_step() -> None:
    rows = watchers_rows(watchers(2))
    assert rows[0].startswith("watchers: 2 cameras at 720p@15 fps")
    assert len(rows) == 4
    assert "p50/p95 -/- ms" in rows[1]  # none watched: nothing rendered
    assert "p50/p95 13.0/15.0 ms" in rows[3] and "viewer:receive/superseded=2" in rows[3]


def test_the_command_line_combines_runs_made_in_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    first, second, out = tmp_path / "fanout.json", tmp_path / "cameras.json", tmp_path / "curves.png"
    first.write_text(json.dumps(saved_run(fanout=[dataclasses.asdict(fanout(1))])))
    cameras = CamerasResult(fps_per_camera=15.0, carried=1, steps=[camera_step(1, p50=None)])
    second.write_text(json.dumps(saved_run(cameras=dataclasses.asdict(cameras))))
    monkeypatch.setattr("sys.argv", ["bench.curves", str(first), str(second), str(out)])
    main()
    assert out.read_bytes().startswith(PNG_MAGIC)


def test_an_unwatched_cameras_cost_is_what_the_viewer_and_redis_add_to_the_captures() -> None:
    # With none watched: capture 0.25 cores, redis 0.01 + viewer 0.04 on top of it.
    assert unwatched_cost(watchers()) == pytest.approx(0.05 / 0.25)
    out = Verdicts()
    watchers_verdicts(watchers(), out)
    assert out.lines[0].rstrip().endswith("MISSED")  # 20% > the 5% tolerance
    assert unwatched_cost(WatchersResult(cameras=3, fps_per_camera=15.0, size="720p")) is None
