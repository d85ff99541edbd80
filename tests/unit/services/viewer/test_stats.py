"""Live figures for the page: delivered fps that decays when frames stop, latency percentiles."""

from __future__ import annotations

import pytest

from services.viewer.stats import RollingStats


def test_stats_report_rate_and_percentiles_and_decay_when_frames_stop() -> None:
    stats = RollingStats(window=5.0)
    for i in range(150):
        stats.record(0.010 + (0.090 if i == 149 else 0.0), now=i / 30)
    assert stats.fps(now=149 / 30) == pytest.approx(30, rel=0.05)
    assert stats.percentile(50) == pytest.approx(0.010)
    assert stats.percentile(100) == pytest.approx(0.100)
    assert stats.fps(now=149 / 30 + 10) == 0.0
