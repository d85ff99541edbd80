"""Frame pacing: a file at its rate, a live camera thinned, never a burst to catch up."""

from __future__ import annotations

import pytest

from services.capture.pacing import Pacer


def test_pacer_spaces_frames_of_a_file_at_the_target_rate() -> None:
    pacer = Pacer(10)
    assert pacer.wait_time(100.0) == 0.0
    assert pacer.wait_time(100.01) == pytest.approx(0.09)
    assert pacer.wait_time(100.2) == pytest.approx(0.0)


def test_pacer_that_fell_behind_restarts_instead_of_bursting() -> None:
    pacer = Pacer(10)
    pacer.wait_time(0.0)
    # Half a second late: it must not emit five frames back to back to catch up.
    assert pacer.wait_time(0.6) == 0.0
    assert pacer.wait_time(0.61) == pytest.approx(0.09)


def test_pacer_thins_a_live_30fps_camera_to_15fps() -> None:
    pacer = Pacer(15)
    admitted = [pacer.admit(i / 30) for i in range(30)]
    assert sum(admitted) == 15
    assert admitted[:4] == [True, False, True, False]


def test_pacer_without_a_rate_never_waits_or_skips() -> None:
    for fps in (None, 0):
        pacer = Pacer(fps)
        assert pacer.wait_time(1.0) == 0.0
        assert all(pacer.admit(i / 1000) for i in range(100))
