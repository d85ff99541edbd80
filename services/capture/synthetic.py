"""The built-in test pattern: moving shapes, a frame counter and a clock, no camera needed."""

from __future__ import annotations

import time

import cv2
import numpy as np

from shared.image import NDArray


class TestPattern:
    """Draws frame ``n`` of a camera-like pattern (colour ramp, noise, a moving ball, text)."""

    def __init__(self, width: int, height: int, camera: str) -> None:
        self.width, self.height, self.camera = width, height, camera
        self._background = _background(width, height)
        self._frame = np.empty_like(self._background)
        self.count = 0

    def next_frame(self) -> NDArray:
        n = self.count
        self.count += 1
        frame = self._frame
        np.copyto(frame, self._background)
        w, h = self.width, self.height
        radius = max(8, h // 10)
        x = int((w - 2 * radius) * (0.5 + 0.5 * np.sin(n / 23.0))) + radius
        y = int((h - 2 * radius) * (0.5 + 0.5 * np.sin(n / 37.0))) + radius
        cv2.circle(frame, (x, y), radius, (40, 220, 250), thickness=-1, lineType=cv2.LINE_AA)
        sweep = (n * 7) % w
        cv2.line(frame, (sweep, 0), (sweep, h - 1), (255, 255, 255), 2)
        scale = max(0.6, h / 480)
        stamp = time.strftime("%H:%M:%S", time.localtime()) + f".{int(time.time() * 1000) % 1000:03d}"
        _label(frame, f"framebus {self.camera}", (int(16 * scale), int(40 * scale)), scale)
        _label(frame, f"frame {n:08d}", (int(16 * scale), int(80 * scale)), scale)
        _label(frame, stamp, (int(16 * scale), int(120 * scale)), scale)
        return frame


def _label(frame: NDArray, text: str, origin: tuple[int, int], scale: float) -> None:
    thickness = max(1, int(2 * scale))
    cv2.putText(frame, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 3, cv2.LINE_AA)
    cv2.putText(frame, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)


def _background(width: int, height: int) -> NDArray:
    """A hue ramp with sensor-like noise, so JPEG sizes resemble a real camera's."""
    hue = np.tile(np.linspace(0, 179, width, dtype=np.float32), (height, 1)).astype(np.uint8)
    value = np.tile(np.linspace(90, 230, height, dtype=np.float32)[:, None], (1, width)).astype(np.uint8)
    hsv = cv2.merge([hue, np.full_like(hue, 170), value])
    bgr = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    noise = np.random.default_rng(7).integers(-12, 13, size=bgr.shape, dtype=np.int16)
    noisy: NDArray = np.clip(bgr.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return noisy
