"""The bench's camera-like clip (testsrc2 + temporal noise, H.264), made once into bench/.cache/."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

CACHE = Path(__file__).resolve().parent / ".cache"
FPS = 30


def clip_path(width: int, height: int, seconds: int) -> Path:
    """The clip for this size, generated with ffmpeg if it is not cached yet."""
    path = CACHE / f"testsrc2-noise-{width}x{height}-{FPS}fps-{seconds}s.mp4"
    if path.exists():
        return path
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SystemExit("ffmpeg is not installed: run `make setup`")
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.mp4")
    argv = [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={FPS}",
        "-t", str(seconds),
        # Temporal sensor-like noise: JPEG sizes and codec costs like a real camera's, not a cartoon's.
        "-vf", "noise=alls=12:allf=t",
        "-c:v", "libx264", "-preset", "ultrafast", "-crf", "20", "-pix_fmt", "yuv420p", "-g", str(FPS),
        str(tmp),
    ]  # fmt: skip
    subprocess.run(argv, check=True)
    tmp.rename(path)
    return path


def load_frames(path: Path, limit: int) -> list[npt.NDArray[np.uint8]]:
    """Up to ``limit`` decoded BGR frames of the clip."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    frames: list[npt.NDArray[np.uint8]] = []
    try:
        while len(frames) < limit:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(np.asarray(frame, np.uint8))
    finally:
        cap.release()
    if not frames:
        raise SystemExit(f"cannot read frames from {path}")
    return frames
