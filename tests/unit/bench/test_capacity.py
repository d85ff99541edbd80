"""The capacity case's pure parts: the carried rule, the window's figures, the tables."""

from __future__ import annotations

import dataclasses
import json

from bench.bus_load import next_slot
from bench.capacity import (
    RULE,
    CapacityCell,
    CapacityResult,
    Published,
    Received,
    Spec,
    blocking_cell,
    capacity_markdown,
    capacity_rows,
    capacity_verdicts,
    figures,
    routing,
    subscriber_groups,
)
from bench.verdicts import Verdicts

MS = 1_000_000
T0 = 1_800_000_000 * 10**9  # a plausible epoch, in ns


def cell(backend: str, cameras: int, subs: int, status: str = "carried", **figures: object) -> CapacityCell:
    measured = {
        "delivered_min": 1.0,
        "delivered_mean": 1.0,
        "published_min": 1.0,
        "p50_ms": 1.5,
        "p99_ms": 4.0,
        "max_ms": 6.0,
        "delivered_fps": 15.0 * cameras * subs,
        "redis_cores": 0.05,
        "publisher_cores": 0.02,
        "subscriber_cores": 0.1,
        "other_cores": 0.0,
        "load_processes": 2,
        "seconds": 7.0,
    }
    if status == "not run":
        measured = {}
    return CapacityCell(
        backend=backend,
        cameras=cameras,
        subscribers_per_camera=subs,
        status=status,
        carried=status == "carried",
        **{**measured, **figures},  # type: ignore[arg-type]
    )


def result(*cells: CapacityCell) -> CapacityResult:
    return CapacityResult(
        fps=15.0,
        jpeg_bytes=126_000,
        width=1280,
        height=720,
        cpus=2,
        cluster_masters=3,
        rule=RULE,
        warm_seconds=2.0,
        measure_seconds=7.0,
        subscribers_per_process=64,
        cells=cells,
        seconds=100.0,
    )


def test_the_carried_rule_names_every_bound_it_misses() -> None:
    assert RULE.failures(delivered=0.99, published=0.99, p99_ms=99.9) == []
    assert RULE.failures(delivered=1.0, published=1.0, p99_ms=100.0) == ["p99 100 ms >= 100 ms"]
    missed = RULE.failures(delivered=0.5, published=0.9, p99_ms=None)
    assert missed == [
        "a subscriber got 50.0% of frames",
        "a camera published 90.0% of 15 fps",
        "p99 none >= 100 ms",
    ]


def test_figures_judge_frames_by_when_they_were_sent() -> None:
    # cam0 sends seq 1..10 every 100 ms from T0; the window is [T0 + 150 ms, T0 + 550 ms]: seq 3..6.
    sent = [(seq, T0 + (seq - 1) * 100 * MS) for seq in range(1, 11)]
    published = Published({"cam0": sent}, errors=0)
    start, end = T0 + 150 * MS, T0 + 550 * MS
    # One subscriber got everything 2 ms late (seq 6 arrives after the window ends: still counted);
    # the other skipped seq 4 and got seq 5 20 ms late.
    everything = Received("cam0", [(seq, ns, ns + 2 * MS) for seq, ns in sent], errors=0)
    skipping = Received("cam0", [(seq, ns, ns + 20 * MS) for seq, ns in sent if seq != 4], errors=0)
    fig = figures(published, [everything, skipping], start, end, fps=10.0)
    assert fig.delivered_min == 0.75 and fig.delivered_mean == 0.875
    assert fig.published_min == 1.0  # 4 frames in 0.4 s at 10 fps
    assert sorted(fig.latencies_ms) == [2.0] * 4 + [20.0] * 3


def test_a_silent_subscriber_or_a_slow_camera_counts_against_the_cell() -> None:
    sent = [(seq, T0 + (seq - 1) * 200 * MS) for seq in range(1, 6)]  # 5 fps, asked for 10
    fig = figures(Published({"cam0": sent}, 0), [Received("cam0", [], 0)], T0, T0 + 999 * MS, fps=10.0)
    assert fig.delivered_min == 0.0
    assert 0.49 < fig.published_min < 0.52
    assert fig.latencies_ms == []


def test_subscribers_are_dealt_over_as_few_processes_as_needed() -> None:
    assert subscriber_groups(["cam0"], 1, 64) == [["cam0"]]
    groups = subscriber_groups([f"cam{i}" for i in range(16)], 16, 64)
    assert len(groups) == 4 and all(len(g) == 64 for g in groups)
    # Round-robin: every process reads every camera.
    assert all(len(set(g)) == 16 for g in groups)
    assert len(subscriber_groups(["a", "b", "c"], 30, 64)) == 2


def test_a_late_camera_jumps_to_the_current_slot() -> None:
    assert next_slot(start=0.0, period=0.1, slot=4, now=0.45) == (5, 0)
    # 0.78 s: slots 5 and 6 were missed while the previous append took too long.
    assert next_slot(start=0.0, period=0.1, slot=4, now=0.78) == (7, 2)


def test_a_cell_is_not_run_when_a_smaller_one_was_not_carried() -> None:
    done = [cell("redis", 4, 4, "not carried"), cell("redis", 1, 16, "failed"), cell("cluster", 1, 1)]
    assert blocking_cell(Spec("redis", 8, 4), done) is done[0]
    assert blocking_cell(Spec("redis", 8, 1), done) is None  # fewer subscribers per camera
    assert blocking_cell(Spec("redis", 4, 16), done) is done[0]
    assert blocking_cell(Spec("cluster", 16, 16), done) is None  # another backend; a failure blocks nothing


def test_the_tables_show_every_cell_and_serialise() -> None:
    run = result(
        cell("redis", 1, 1),
        cell("redis", 1, 4),
        cell("redis", 8, 1),
        cell("redis", 8, 4, "not carried", p99_ms=250.0, delivered_min=0.5, reason="p99 250 ms >= 100 ms"),
        cell("cluster", 1, 1, redis_calls_per_second={"xread": 15.0, "command|getkeys": 30.0}),
        cell("cluster", 1, 4, "not carried", reason="a subscriber got 50.0% of frames"),
        cell("cluster", 8, 1),
        cell("cluster", 8, 4, "not run", reason="1 x 4 already not carried"),
    )
    markdown = capacity_markdown(run)
    assert "| cameras (15 fps each) | 1 subscriber/camera | 4 subscribers/camera |" in markdown
    assert "| 1 | yes / yes | yes / no |" in markdown
    assert "| 8 | yes / yes | no / no* |" in markdown
    assert "| 3-master cluster | 8 | 4 | | not run: 1 x 4 already not carried | | | | |" in markdown
    assert "2.0 COMMAND GETKEYS per XREAD" in markdown
    rows = capacity_rows(run)
    assert len(rows) == 3 + 8 and rows[0].startswith("capacity: 1280x720 JPEG ~123 KiB")
    assert "not carried" in rows[6] and "250.0" in rows[6]
    assert json.loads(json.dumps(dataclasses.asdict(run)))["cells"][3]["p99_ms"] == 250.0


def test_routing_notes_come_from_the_command_counts() -> None:
    assert routing(cell("redis", 1, 1, redis_calls_per_second={"xread": 15.0, "xadd": 15.0})) == ""
    calls = {"xread": 100.0, "command|getkeys": 200.0, "cluster|slots": 8.5}
    assert routing(cell("cluster", 8, 4, redis_calls_per_second=calls)) == (
        "2.0 COMMAND GETKEYS per XREAD, slot map re-read 8.5/s"
    )


def test_verdicts_are_informational() -> None:
    out = Verdicts()
    capacity_verdicts(
        result(cell("redis", 1, 1), cell("redis", 8, 4), cell("cluster", 1, 1, "not carried")), out
    )
    assert all(line.rstrip().endswith("n/a") for line in out.lines)
    (largest,) = [line for line in out.lines if "capacity redis: largest carried" in line]
    assert "(8x4)" in largest and "32.00" in largest
    (none,) = [line for line in out.lines if "capacity cluster: largest carried" in line]
    assert "(-)" in none
