"""The codec floor: the JPEG work itself, in one process, on the clip's frames.

Capture encode at JPEG_QUALITY, then the viewer's exact work (services.viewer.render.Renderer:
decode, letterbox to 600x600, re-encode). Steady state: one warm-up pass, then medians.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import cv2

from bench.clip import load_frames
from bench.results import Floor
from services.viewer.render import Renderer
from shared.memory import keep_frame_buffers_mapped


def measure_floor(clip: Path, quality: int = 80, frames: int = 60, passes: int = 3) -> Floor:
    """Median seconds per frame for each stage, plus the derived floor figures."""
    cv2.setNumThreads(1)  # as in the services: one core per stage
    keep_frame_buffers_mapped()
    images = load_frames(clip, frames)
    height, width = images[0].shape[:2]
    renderer = Renderer(600, 600, "letterbox", 80, "auto")
    params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    encode, decode, resize, reencode, sizes = [], [], [], [], []
    for pass_no in range(passes + 1):
        for image in images:
            t0 = time.perf_counter()
            ok, buf = cv2.imencode(".jpg", image, params)
            t1 = time.perf_counter()
            assert ok
            jpeg = buf.tobytes()
            rendered = renderer.render(jpeg, width, height)
            assert rendered is not None
            if pass_no == 0:
                continue  # warm-up: allocator and caches in steady state
            encode.append(t1 - t0)
            decode.append(rendered[1].decode)
            resize.append(rendered[1].resize)
            reencode.append(rendered[1].encode)
            sizes.append(len(jpeg))
    encode_s = statistics.median(encode)
    decode_s, resize_s, reencode_s = (statistics.median(s) for s in (decode, resize, reencode))
    render = decode_s + resize_s + reencode_s
    return Floor(
        encode_s=encode_s,
        decode_s=decode_s,
        resize_s=resize_s,
        reencode_s=reencode_s,
        render_s=render,
        latency_floor_s=encode_s + render,
        # The two stages run in different processes (cores), so the slower one bounds the rate.
        max_fps_floor=1.0 / max(encode_s, render),
        jpeg_bytes=statistics.median(sizes),
    )
