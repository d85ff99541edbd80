"""The frame an algorithm receives: metadata, the JPEG as sent, and the image on demand."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from shared.wire import FrameMeta

Scale = Literal[1, 2, 4, 8]
Image = npt.NDArray[np.uint8]

# libjpeg decodes at 1/2, 1/4 or 1/8 size for much less work than a full decode and a resize.
_REDUCED_FLAGS: dict[tuple[int, bool], int] = {
    (1, False): cv2.IMREAD_COLOR,
    (2, False): cv2.IMREAD_REDUCED_COLOR_2,
    (4, False): cv2.IMREAD_REDUCED_COLOR_4,
    (8, False): cv2.IMREAD_REDUCED_COLOR_8,
    (1, True): cv2.IMREAD_GRAYSCALE,
    (2, True): cv2.IMREAD_REDUCED_GRAYSCALE_2,
    (4, True): cv2.IMREAD_REDUCED_GRAYSCALE_4,
    (8, True): cv2.IMREAD_REDUCED_GRAYSCALE_8,
}


class UndecodableFrame(ValueError):
    """The JPEG passed the wire's marker check but libjpeg could not decode it."""


def decode_jpeg(jpeg: bytes, scale: int = 1, grey: bool = False) -> Image:
    """BGR (or single-channel grey) pixels of ``jpeg``, decoded at 1/``scale`` of its size."""
    flag = _REDUCED_FLAGS.get((scale, grey))
    if flag is None:
        raise ValueError(f"scale must be 1, 2, 4 or 8, not {scale!r}")
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), flag)
    if image is None:
        raise UndecodableFrame("libjpeg could not decode the frame")
    return image.astype(np.uint8, copy=False)


@dataclass(frozen=True, slots=True)
class Frame:
    """One camera frame as delivered to a subscriber.

    ``skipped`` counts the frames passed over just before this one: superseded ones in
    newest-wins mode, or gaps in the sequence (frames lost upstream) in in-order mode.
    ``lag_seconds`` is how old the frame was (capture → delivery to this process), measured
    with this machine's clock against the producer's, so it includes any clock offset.
    """

    meta: FrameMeta
    jpeg: bytes
    skipped: int = 0
    received_ns: int = field(default_factory=time.time_ns)
    scale: int = 1  # the subscription's default decode scale
    grey: bool = False  # the subscription's default colour mode

    @property
    def camera(self) -> str:
        return self.meta.camera

    @property
    def seq(self) -> int:
        return self.meta.seq

    @property
    def captured_ns(self) -> int:
        return self.meta.captured_ns

    @property
    def width(self) -> int:
        return self.meta.width

    @property
    def height(self) -> int:
        return self.meta.height

    @property
    def lag_seconds(self) -> float:
        return max(0, self.received_ns - self.meta.captured_ns) / 1e9

    def image(self, scale: int | None = None, grey: bool | None = None) -> Image:
        """Decode now (CPU work: from async code, call it in an executor).

        ``scale`` 2, 4 or 8 decodes at that fraction of the source size, ``grey`` gives one
        channel; both default to what the subscription asked for.
        """
        return decode_jpeg(
            self.jpeg, self.scale if scale is None else scale, self.grey if grey is None else grey
        )
