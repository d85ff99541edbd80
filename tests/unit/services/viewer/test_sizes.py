"""Snapshot sizes: rendered once per frame per size, whoever asks."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from services.viewer.settings import ViewerSettings
from services.viewer.sizes import SizedSnapshots, SourceFrame
from shared.wire import FrameMeta


def source(seq: int) -> SourceFrame:
    image = np.full((360, 640, 3), seq * 20 % 255, np.uint8)
    ok, encoded = cv2.imencode(".jpg", image)
    assert ok
    now = time.time_ns()
    return SourceFrame(FrameMeta("cam0", seq, now, now, 640, 360), encoded.tobytes())


class CountingExecutor(ThreadPoolExecutor):
    submitted = 0

    def submit(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.submitted += 1
        return super().submit(*args, **kwargs)


async def test_a_size_is_rendered_once_per_frame_however_many_ask() -> None:
    with CountingExecutor(2) as executor:
        sizes = SizedSnapshots(ViewerSettings(), executor)
        first = await asyncio.gather(*(sizes.render(320, source(1)) for _ in range(5)))
        assert executor.submitted == 1 and len(set(first)) == 1
        again = await sizes.render(320, source(1))
        assert executor.submitted == 1 and again == first[0]
        await sizes.render(320, source(2))  # a new frame: a new render
        await sizes.render(160, source(2))  # another size: its own
        assert executor.submitted == 3
    decoded = cv2.imdecode(np.frombuffer(first[0] or b"", np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None and decoded.shape == (320, 320, 3)
