"""Print a motion score for each new frame of a camera, read straight from its Redis Stream.

    python examples/motion_score.py --redis-url redis://localhost:6379/0 --camera cam0 --frames 20

Uses only the public wire format (docs/protocol.md), no framebus code: XREAD BLOCK on
``framebus:frames:<camera>``, decode the ``jpeg`` field, compare it with the previous frame.
Each line is ``<seq> <score>``: the mean absolute difference of two 160-pixel-wide grey
thumbnails, 0 (still) to 255. When the reader falls behind, the stream's MAXLEN trim has
already dropped old entries, so it jumps to the newest entry instead of replaying stale ones.
Needs redis, numpy and opencv-python-headless (all in the framebus venv).
"""

from __future__ import annotations

import argparse
import sys

import cv2
import numpy as np
import redis

THUMB_WIDTH = 160  # motion is visible at this size, and it costs ~0.1 ms per frame
BLOCK_MS = 2000


def thumbnail(jpeg: bytes) -> np.ndarray | None:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_4)
    if image is None:
        return None
    height = max(1, round(image.shape[0] * THUMB_WIDTH / image.shape[1]))
    return cv2.resize(image, (THUMB_WIDTH, height), interpolation=cv2.INTER_AREA)


def motion_score(previous: np.ndarray, current: np.ndarray) -> float:
    if previous.shape != current.shape:
        return 255.0  # the camera changed resolution: call it full motion
    return float(cv2.absdiff(previous, current).mean())


def follow(client: redis.Redis, camera: str, frames: int) -> int:
    key = f"framebus:frames:{camera}"
    last_id = "$"  # only new frames; later reads continue from the last id seen
    previous: np.ndarray | None = None
    printed = 0
    while frames == 0 or printed < frames:
        reply = client.xread({key: last_id}, count=16, block=BLOCK_MS)
        if not reply:
            continue  # no frame within BLOCK_MS: keep waiting
        entries = reply[0][1]
        last_id, fields = entries[-1]  # newest wins; older entries in the batch are skipped
        current = thumbnail(fields[b"jpeg"])
        if current is None:
            print(f"{fields[b'seq'].decode()} undecodable", file=sys.stderr)
            continue
        if previous is not None:
            print(f"{fields[b'seq'].decode()} {motion_score(previous, current):.2f}", flush=True)
            printed += 1
        previous = current
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://localhost:6379/0")
    parser.add_argument("--camera", default="cam0")
    parser.add_argument("--frames", type=int, default=0, help="stop after this many scores (0: never)")
    args = parser.parse_args()
    client = redis.Redis.from_url(args.redis_url)
    try:
        return follow(client, args.camera, args.frames)
    except KeyboardInterrupt:
        return 0
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
