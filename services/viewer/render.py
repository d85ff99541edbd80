"""Turning a camera JPEG into the viewer's 600x600 JPEG: decode, fit, encode.

The geometry is pure and unit-tested; ``Renderer.render`` blocks and runs in an executor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from shared.jpeg import JpegHeaderError, read_checked_header

# JPEG can decode at 1/2, 1/4 or 1/8 scale for little more than the entropy decoding.
REDUCED_FLAGS = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


@dataclass(frozen=True, slots=True)
class Placement:
    """Where the scaled image goes inside the output canvas."""

    width: int
    height: int
    x: int
    y: int


def fit(src_w: int, src_h: int, dst_w: int, dst_h: int, mode: str) -> Placement:
    if mode == "stretch":
        return Placement(dst_w, dst_h, 0, 0)
    scale = min(dst_w / src_w, dst_h / src_h)
    width = max(1, min(dst_w, round(src_w * scale)))
    height = max(1, min(dst_h, round(src_h * scale)))
    return Placement(width, height, (dst_w - width) // 2, (dst_h - height) // 2)


def decode_scale(src_w: int, src_h: int, placement: Placement, policy: str) -> int:
    """The largest JPEG reduction (1, 2, 4, 8) whose output still covers the placement."""
    if policy == "never":
        return 1
    best = 1
    for factor in (2, 4, 8):
        # "auto" never upscales: the reduced image must still cover the placement.
        covers = src_w // factor >= placement.width and src_h // factor >= placement.height
        if covers or (policy == "always" and factor == 2):
            best = factor
    return best


@dataclass(frozen=True, slots=True)
class RenderedFrame:
    jpeg: bytes
    seq: int  # the camera's sequence number; 0 for a "no signal" card
    live: bool
    ready_ns: int


@dataclass(frozen=True, slots=True)
class RenderTimings:
    decode: float
    resize: float
    encode: float


class Renderer:
    """Renders one camera's frames; holds its canvas so the bars are painted only once."""

    def __init__(self, width: int, height: int, fit_mode: str, quality: int, decode_policy: str) -> None:
        self.width, self.height = width, height
        self.fit_mode, self.decode_policy = fit_mode, decode_policy
        self._params = [cv2.IMWRITE_JPEG_QUALITY, quality]
        self._canvas = np.zeros((height, width, 3), np.uint8)

    def render(self, jpeg: bytes, src_w: int = 0, src_h: int = 0) -> tuple[bytes, RenderTimings] | None:
        """The output JPEG, or None when the bytes do not decode or claim too many pixels.

        ``src_w``/``src_h`` (the declared size) are not trusted: the decode is planned from
        the JPEG's own header, read before anything is decoded, so a frame claiming more
        pixels than shared/jpeg.py allows is never handed to the decoder.
        """
        t0 = time.perf_counter()
        try:
            header = read_checked_header(jpeg)
        except JpegHeaderError:  # JpegTooLarge included: a decompression bomb costs a header read
            return None
        placement = fit(header.width, header.height, self.width, self.height, self.fit_mode)
        flags = REDUCED_FLAGS[decode_scale(header.width, header.height, placement, self.decode_policy)]
        try:
            image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), flags)
        except cv2.error:
            return None  # e.g. a header claiming more pixels than OPENCV_IO_MAX_IMAGE_PIXELS
        t1 = time.perf_counter()
        if image is None:
            return None
        # Fit what was actually decoded: the reduction changed the size.
        placement = fit(image.shape[1], image.shape[0], self.width, self.height, self.fit_mode)
        scaled = cv2.resize(image, (placement.width, placement.height), interpolation=cv2.INTER_LINEAR)
        canvas = self._canvas
        canvas[placement.y : placement.y + placement.height, placement.x : placement.x + placement.width] = (
            scaled
        )
        t2 = time.perf_counter()
        ok, encoded = cv2.imencode(".jpg", canvas, self._params)
        t3 = time.perf_counter()
        if not ok:
            return None
        return encoded.tobytes(), RenderTimings(t1 - t0, t2 - t1, t3 - t2)


def no_signal_jpeg(width: int, height: int, camera: str, detail: str) -> bytes:
    """A plain card saying the camera is offline, so a viewer never freezes on an old frame."""
    card = np.full((height, width, 3), 32, np.uint8)
    scale = width / 600
    for text, y, size in (("NO SIGNAL", 0.45, 1.6), (camera, 0.58, 0.9), (detail, 0.68, 0.6)):
        (w, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, size * scale, 2)
        origin = ((width - w) // 2, int(height * y))
        cv2.putText(
            card, text, origin, cv2.FONT_HERSHEY_SIMPLEX, size * scale, (200, 200, 200), 2, cv2.LINE_AA
        )
    ok, encoded = cv2.imencode(".jpg", card, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return bytes(encoded.tobytes())
