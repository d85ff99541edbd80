"""Example algorithm: a box around whatever moves, published as results the viewer draws.

    python examples/algorithm/motion_boxes.py --url redis://localhost:6379/0 --camera cam0
    python examples/algorithm/motion_boxes.py --url http://localhost:8080 --camera cam0   # via a gateway

Three processes started with the same ``--group motion`` share the camera's frames (Redis only):
each frame is handled by one of them. ``--url`` defaults to FRAMEBUS_URL, then REDIS_URL;
the gateway token comes from FRAMEBUS_TOKEN or GATEWAY_TOKEN.

The work (decode at reduced size, difference with the previous frame, contours) runs in a
thread, off the event loop that receives frames and sends results. One line per frame:
``<seq> boxes=<n> skipped=<k> latency_ms=<capture → result published>``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

import framebus

DIFF_THRESHOLD = 25  # grey levels: less is sensor noise and JPEG artefacts
MIN_AREA_FRACTION = 0.0005  # ignore specks smaller than this share of the picture
DILATE_KERNEL = np.ones((3, 3), np.uint8)  # joins the pieces of one moving object


class MotionDetector:
    """Boxes (in source-frame pixels) around regions that changed since the last frame seen."""

    def __init__(self, scale: int) -> None:
        self.scale = scale
        self._previous: np.ndarray | None = None

    def boxes(self, frame: framebus.Frame) -> list[dict[str, float | str]]:
        grey = cv2.GaussianBlur(frame.image(scale=self.scale, grey=True), (5, 5), 0)
        previous, self._previous = self._previous, grey
        if previous is None or previous.shape != grey.shape:
            return []
        _, mask = cv2.threshold(cv2.absdiff(previous, grey), DIFF_THRESHOLD, 255, cv2.THRESH_BINARY)
        mask = cv2.dilate(mask, DILATE_KERNEL, iterations=2)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        min_area = MIN_AREA_FRACTION * grey.shape[0] * grey.shape[1]
        to_source_x = frame.width / grey.shape[1]
        to_source_y = frame.height / grey.shape[0]
        found = []
        for contour in contours:
            if cv2.contourArea(contour) < min_area:
                continue
            x, y, w, h = cv2.boundingRect(contour)
            found.append(
                {
                    "x": x * to_source_x,
                    "y": y * to_source_y,
                    "w": w * to_source_x,
                    "h": h * to_source_y,
                    "label": "motion",
                    "score": min(1.0, cv2.contourArea(contour) / max(1, w * h)),
                }
            )
        return found[:50]


async def run(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    detector = MotionDetector(args.scale)
    handled = failed = 0
    # One thread: the detector keeps the previous frame, so frames are handled one at a time.
    with ThreadPoolExecutor(1, thread_name_prefix="motion") as executor:
        async with (
            framebus.subscribe(args.camera, args.url, group=args.group, timeout=None) as frames,
            framebus.AsyncResultsPublisher(args.url, source="motion_boxes") as results,
        ):
            async for frame in frames:
                boxes = await loop.run_in_executor(executor, detector.boxes, frame)
                try:
                    result = await results.publish(frame, boxes=boxes, data={"skipped": frame.skipped})
                except framebus.PublishFailed as exc:
                    failed += 1
                    logging.warning("result of frame %d not published: %s", frame.seq, exc)
                    continue
                handled += 1
                print(
                    f"{frame.seq} boxes={len(boxes)} skipped={frame.skipped} "
                    f"latency_ms={result.latency_seconds * 1000:.1f}",
                    flush=True,
                )
                if args.frames and handled >= args.frames:
                    break
    return 0 if handled else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--url", default=None, help="redis://…, unix://… or http(s)://… (default: FRAMEBUS_URL)"
    )
    parser.add_argument("--camera", default=os.environ.get("CAMERA_ID", "cam0"))
    parser.add_argument(
        "--group", default=None, help="worker-pool name: processes sharing it split the frames"
    )
    parser.add_argument("--scale", type=int, default=4, choices=(1, 2, 4, 8), help="decode at 1/scale size")
    parser.add_argument("--frames", type=int, default=0, help="stop after this many frames (0: never)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        return asyncio.run(run(args))
    except framebus.FramebusError as exc:
        print(f"motion_boxes: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
