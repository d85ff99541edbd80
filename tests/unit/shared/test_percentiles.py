"""One percentile definition (nearest rank) for the viewer's /api/stats and the bench."""

from __future__ import annotations

import pytest

from bench.analysis import FrameRecord, latency_summary
from services.viewer.stats import RollingStats
from shared.percentiles import percentile


def test_nearest_rank_returns_a_value_that_occurred() -> None:
    values = [15.0, 20.0, 35.0, 40.0, 50.0]
    assert percentile(values, 30) == 20.0  # rank ceil(1.5) = 2
    assert percentile(values, 40) == 20.0  # rank 2 exactly
    assert percentile(values, 50) == 35.0
    assert percentile(values, 100) == 50.0
    assert percentile(values, 0) == 15.0
    assert percentile(reversed(values), 50) == 35.0  # order of arrival does not matter


def test_p99_of_a_hundred_values_is_the_99th_not_an_interpolation() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 99) == 99.0
    assert percentile([*values, 1000.0], 99) == 100.0


def test_no_values_no_figure_and_a_bad_q_is_refused() -> None:
    assert percentile([], 50) is None
    with pytest.raises(ValueError, match=r"0\.\.100"):
        percentile([1.0], 101)


def test_the_viewer_page_and_the_bench_report_the_same_p99_for_the_same_frames() -> None:
    # 300 distinct latencies in arrival order (not sorted): a definition that interpolates or
    # rounds the index differently would disagree at p50.
    latencies_ms = [10.0 + ((i * 37) % 300) * 0.05 for i in range(300)]
    stats = RollingStats(samples=300)
    for i, ms in enumerate(latencies_ms):
        stats.record(ms / 1000, now=i / 30)
    records = [FrameRecord("cam0", i, 0, 0, 0, round(ms * 1e6)) for i, ms in enumerate(latencies_ms)]
    bench = latency_summary(records)
    for q, bench_ms in ((50, bench.p50_ms), (95, bench.p95_ms), (99, bench.p99_ms)):
        page = stats.percentile(q)
        assert page is not None
        assert round(page * 1000, 3) == bench_ms
