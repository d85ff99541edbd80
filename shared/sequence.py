"""Reading a camera's sequence numbers: how many frames a step between two of them lost.

Pure functions; a consumer (the viewer's pipeline) calls them with each frame it takes.

* ``seq`` one more than the last: nothing lost.
* ``seq`` further ahead: the frames in between were lost upstream, except the ``superseded``
  ones the consumer itself passed over (counted separately).
* ``seq`` at or below the last: the producer restarted (it counts from 1 again); nothing lost.
* ``seq`` ahead by more than :data:`MAX_SEQUENCE_GAP`: not a believable loss but a producer
  that restarted with another numbering, or a forged number. It counts as one *jump*, not as
  billions of lost frames, so one bad frame cannot wreck a drop counter.
"""

from __future__ import annotations

# A million frames is over 9 hours of a 30 fps camera, or 16 minutes at 1000 fps: a larger
# forward step is not frames lost while the consumer was looking.
MAX_SEQUENCE_GAP = 1_000_000


def count_gap(last_seq: int | None, seq: int, superseded: int = 0) -> int:
    """Frames lost between ``last_seq`` and ``seq``: 0 for the first frame, a restart, or a
    jump (see :func:`is_sequence_jump`, which the caller counts as one ``sequence_jump``)."""
    if last_seq is None or seq <= last_seq:
        return 0
    gap = seq - last_seq - 1 - superseded
    if gap > MAX_SEQUENCE_GAP:
        return 0
    return max(0, gap)


def is_sequence_jump(last_seq: int | None, seq: int, superseded: int = 0) -> bool:
    """True when ``seq`` leaps ahead of ``last_seq`` by more than MAX_SEQUENCE_GAP frames."""
    return last_seq is not None and seq - last_seq - 1 - superseded > MAX_SEQUENCE_GAP
