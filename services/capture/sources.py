"""Frame sources: the synthetic pattern, OpenCV (RTSP/HTTP URL, file, device), preloaded clips.

Everything here blocks; the service calls it from the source's own single-thread executor.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import cast

import cv2

from services.capture.settings import CaptureSettings
from services.capture.synthetic import TestPattern
from shared.image import NDArray

SYNTHETIC_FPS = 30.0


class SourceError(RuntimeError):
    """The source cannot be opened or stopped delivering frames."""


@dataclass(frozen=True, slots=True)
class SourceSpec:
    kind: str  # "synthetic", "device", "url" or "file"
    target: str

    @property
    def live(self) -> bool:
        """A live source paces itself; a file or pattern is paced by us."""
        return self.kind in ("device", "url")


def parse_source(value: str) -> SourceSpec:
    value = value.strip()
    if value == "synthetic":
        return SourceSpec("synthetic", value)
    if value.isascii() and value.isdigit():
        return SourceSpec("device", value)
    if "://" in value:
        return SourceSpec("url", value)
    return SourceSpec("file", value)


class FrameSource(ABC):
    """Blocking frame reader; ``read`` returns None when the source has no more frames."""

    nominal_fps: float | None = None
    width = 0
    height = 0

    @abstractmethod
    def read(self) -> NDArray | None: ...

    def release(self) -> None:  # noqa: B027 - optional for sources that hold nothing
        pass


class SyntheticSource(FrameSource):
    nominal_fps = SYNTHETIC_FPS

    def __init__(self, width: int, height: int, camera: str) -> None:
        self.width, self.height = width, height
        self._pattern = TestPattern(width, height, camera)

    def read(self) -> NDArray:
        return self._pattern.next_frame()


class OpenCvSource(FrameSource):
    def __init__(self, spec: SourceSpec, settings: CaptureSettings) -> None:
        self._spec = spec
        self._loop = settings.capture_loop and spec.kind == "file"
        self._cap = _open_capture(spec, settings)
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.nominal_fps = fps if 1 <= fps <= 240 else None
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))

    def read(self) -> NDArray | None:
        ok, frame = self._cap.read()
        if not ok and self._loop and self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0):
            ok, frame = self._cap.read()
        return cast(NDArray, frame) if ok else None

    def release(self) -> None:
        self._cap.release()


class PreloadedSource(FrameSource):
    """Frames decoded once up front and replayed: a benchmark source with no decode cost."""

    def __init__(self, inner: FrameSource, limit: int, loop: bool) -> None:
        self.frames: list[NDArray] = []
        try:
            while len(self.frames) < limit and (frame := inner.read()) is not None:
                self.frames.append(frame.copy())
        finally:
            inner.release()
        if not self.frames:
            raise SourceError("source gave no frames to preload")
        self.nominal_fps, self.width, self.height = inner.nominal_fps, inner.width, inner.height
        self._loop, self._index = loop, 0

    def read(self) -> NDArray | None:
        if self._index >= len(self.frames):
            if not self._loop:
                return None
            self._index = 0
        frame = self.frames[self._index]
        self._index += 1
        return frame


def open_source(settings: CaptureSettings) -> FrameSource:
    spec = parse_source(settings.capture_source)
    if spec.kind == "synthetic":
        return SyntheticSource(settings.capture_width, settings.capture_height, settings.camera_id)
    if spec.kind == "file":
        _check_file(spec.target)
    source: FrameSource = OpenCvSource(spec, settings)
    if settings.capture_preload_frames:
        source = PreloadedSource(source, settings.capture_preload_frames, settings.capture_loop)
    return source


def _check_file(path: str) -> None:
    if os.path.isdir(path):
        raise SourceError(f"CAPTURE_SOURCE is a directory, not a video file: {path}")
    if not os.path.exists(path):
        raise SourceError(f"CAPTURE_SOURCE file not found: {path}")
    if not os.access(path, os.R_OK):
        raise SourceError(f"CAPTURE_SOURCE file is not readable (permissions): {path}")
    if not os.path.isfile(path):
        raise SourceError(f"CAPTURE_SOURCE is not a regular file: {path}")


def _open_capture(spec: SourceSpec, settings: CaptureSettings) -> cv2.VideoCapture:
    open_ms = int(settings.capture_open_timeout_seconds * 1000)
    read_ms = int(settings.capture_read_timeout_seconds * 1000)
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, open_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, read_ms]
    if spec.kind == "device":
        cap = cv2.VideoCapture(int(spec.target), cv2.CAP_ANY)
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, settings.capture_width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, settings.capture_height)
    else:
        if spec.kind == "url":
            _set_ffmpeg_network_options(spec.target, read_ms)
            # One decoder thread: with more, a stalled stream is noticed only after each
            # thread's read has timed out in turn (measured ~4 s with 1 thread, far more without).
            params += [cv2.CAP_PROP_N_THREADS, 1]
        started = time.monotonic()
        cap = cv2.VideoCapture(spec.target, cv2.CAP_FFMPEG, params)
        if not cap.isOpened() and time.monotonic() - started >= settings.capture_open_timeout_seconds:
            raise SourceError(
                f"timed out opening {spec.kind} source after {settings.capture_open_timeout_seconds:g}s"
            )
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"cannot open {spec.kind} source")
    return cap


def _set_ffmpeg_network_options(url: str, read_ms: int) -> None:
    # This variable replaces OpenCV's defaults (including TCP for RTSP), so say everything:
    # TCP (UDP loses packets -> grey smears), a short probe (open in ~0.15 s instead of ~1 s),
    # and FFmpeg's own socket timeout in microseconds (`stimeout` is ignored by this FFmpeg).
    options = [f"timeout;{read_ms * 1000}"]
    if url.startswith(("rtsp://", "rtsps://")):
        options += ["rtsp_transport;tcp", "analyzeduration;100000", "probesize;32768"]
    os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = "|".join(options)
