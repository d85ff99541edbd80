"""shared/sequence.py: frames lost between two sequence numbers, and forged leaps."""

from __future__ import annotations

from shared.sequence import MAX_SEQUENCE_GAP, count_gap, is_sequence_jump


def test_the_first_frame_loses_nothing() -> None:
    assert count_gap(None, 12345) == 0
    assert not is_sequence_jump(None, 2**63 - 1)


def test_consecutive_frames_lose_nothing() -> None:
    assert count_gap(4, 5) == 0


def test_a_gap_counts_the_missing_frames_minus_those_passed_over_here() -> None:
    assert count_gap(4, 10) == 5
    assert count_gap(4, 10, superseded=3) == 2
    assert count_gap(4, 10, superseded=9) == 0  # never negative


def test_going_backwards_or_repeating_is_a_restart_that_loses_nothing() -> None:
    assert count_gap(1000, 1) == 0
    assert count_gap(7, 7) == 0
    assert not is_sequence_jump(1000, 1)


def test_a_gap_up_to_the_bound_is_believed() -> None:
    assert count_gap(1, 2 + MAX_SEQUENCE_GAP) == MAX_SEQUENCE_GAP
    assert not is_sequence_jump(1, 2 + MAX_SEQUENCE_GAP)


def test_one_forged_huge_seq_is_one_jump_not_billions_of_drops() -> None:
    forged = 2**63 - 1
    assert count_gap(41, forged) == 0
    assert is_sequence_jump(41, forged)
    assert count_gap(1, 3 + MAX_SEQUENCE_GAP) == 0
    assert is_sequence_jump(1, 3 + MAX_SEQUENCE_GAP)
    # ...and the real camera's next frame after the forgery is a restart, not a gap either.
    assert count_gap(forged, 42) == 0
