"""Frame pacing and the reconnect ladder."""

from __future__ import annotations

import pytest

from services.capture.pacing import Pacer
from shared.backoff import Backoff


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


def test_backoff_climbs_the_ladder_caps_and_resets() -> None:
    backoff = Backoff((1, 2, 5))
    assert [backoff.next_delay() for _ in range(5)] == [1, 2, 5, 5, 5]
    backoff.reset()
    assert backoff.next_delay() == 1


def test_backoff_rejects_an_empty_ladder() -> None:
    with pytest.raises(ValueError):
        Backoff(())
