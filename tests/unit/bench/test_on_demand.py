"""The on-demand case's judgement of when capture was back at full rate."""

from __future__ import annotations

import pytest

from bench.analysis import FrameRecord
from bench.on_demand import OnDemandResult, on_demand_rows, on_demand_verdicts, resume_ms
from bench.verdicts import Verdicts

MS = 1_000_000


def record(seq: int, captured_ms: float) -> FrameRecord:
    captured = int(captured_ms * MS)
    return FrameRecord("cam0", seq, captured, captured, captured, captured + 10 * MS)


def test_full_rate_starts_at_the_first_frame_its_successor_follows_within_a_frame_interval() -> None:
    opened = 1000 * MS
    trickle = [record(1, 900), record(2, 1900)]  # 1 fps: the second one is after the opening
    full = [record(3, 1933.3), record(4, 1966.7), record(5, 2000)]  # 30 fps from frame 2 on
    assert resume_ms([*trickle, *full], opened) == pytest.approx(900.0, abs=0.5)
    assert resume_ms(trickle, opened) is None


def test_the_figures_print_with_verdicts() -> None:
    result = OnDemandResult(
        fps=30.0,
        idle_fps=1.0,
        capture_idle_cores=0.05,
        capture_watched_cores=0.25,
        first_picture_ms=40.0,
        resume_ms=50.0,
        sizes=[],
    )
    out = Verdicts()
    on_demand_verdicts(result, out)
    assert out.lines[0].rstrip().endswith("MET") and out.lines[1].rstrip().endswith("MISSED")
    assert "0.050 cores unwatched" in on_demand_rows(result)[1]
