"""The reconnect ladder: climbs, stays at the top, starts over after a success."""

from __future__ import annotations

import pytest

from shared.backoff import Backoff


def test_backoff_climbs_the_ladder_caps_and_resets() -> None:
    backoff = Backoff((1, 2, 5))
    assert [backoff.next_delay() for _ in range(5)] == [1, 2, 5, 5, 5]
    backoff.reset()
    assert backoff.next_delay() == 1


def test_backoff_rejects_an_empty_ladder() -> None:
    with pytest.raises(ValueError):
        Backoff(())
