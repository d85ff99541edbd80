"""The classic pipelines framebus is compared with. Reference code for the bench only.

These copy the patterns of the usual tutorials on purpose, warts included:
  redis: sender JPEG-encodes, base64s, SETs a key, PUBLISHes a notification and waits for the
         receiver's ack; the receiver GETs, b64decodes, decodes and resizes to 600x600 (sync redis-py).
  http:  sender POSTs the base64 JPEG as a form field with requests, a new connection per frame, to a
         synchronous Flask server that decodes and resizes to 600x600 before answering.
No re-encode at the receiver (the classic displays the array): framebus's viewer does one more
JPEG encode per frame than these do.

Run as processes by the bench: ``python -m bench.classic <role> [options]``. Receivers append
"seq,captured_ns,ready_ns" CSV lines to --log.
"""

from __future__ import annotations

import argparse
import base64
import logging
import time
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np

FRAME_KEY = "classic:frame"
NOTIFY = "classic:new_frame"
ACK = "classic:ack"
SIZE = (600, 600)


def _open_log(path: str) -> TextIO:
    log = open(path, "a", buffering=1)  # noqa: SIM115 - lives as long as the receiver
    if log.tell() == 0:
        log.write("seq,captured_ns,ready_ns\n")
    return log


def _process(jpeg: bytes) -> None:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is not None:
        cv2.resize(image, SIZE)


def redis_receiver(args: argparse.Namespace) -> None:
    import redis

    r = redis.Redis.from_url(args.redis)
    sub = r.pubsub()
    sub.subscribe(NOTIFY)
    with _open_log(args.log) as log:
        for message in sub.listen():
            if message["type"] != "message":
                continue
            seq, captured_ns = message["data"].decode().split(",")
            _process(base64.b64decode(r.get(FRAME_KEY) or b""))
            log.write(f"{seq},{captured_ns},{time.time_ns()}\n")
            r.publish(ACK, seq)


def redis_sender(args: argparse.Namespace) -> None:
    import redis

    r = redis.Redis.from_url(args.redis)
    acks = r.pubsub()
    acks.subscribe(ACK)
    acks.get_message(timeout=1.0)  # the subscribe confirmation

    def send(seq: int, frame: np.ndarray) -> None:
        captured_ns = time.time_ns()
        _ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, args.quality])
        r.set(FRAME_KEY, base64.b64encode(buf.tobytes()))
        r.publish(NOTIFY, f"{seq},{captured_ns}")
        while True:  # the receiver's ack, as the tutorials do
            message = acks.get_message(timeout=5.0)
            if message is None or message["type"] == "message":
                return

    _pace(args, send)


def http_receiver(args: argparse.Namespace) -> None:
    from flask import Flask, request

    app = Flask("classic")
    log = _open_log(args.log)

    @app.post("/frame")
    def frame() -> tuple[str, int]:
        _process(base64.b64decode(request.form["image"]))
        log.write(f"{request.form['seq']},{request.form['captured_ns']},{time.time_ns()}\n")
        return "ok", 200

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not one log line per frame
    app.run("127.0.0.1", args.port, threaded=False)


def http_sender(args: argparse.Namespace) -> None:
    import requests

    def send(seq: int, frame: np.ndarray) -> None:
        captured_ns = time.time_ns()
        _ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, args.quality])
        image = base64.b64encode(buf.tobytes()).decode()
        data = {"image": image, "seq": str(seq), "captured_ns": str(captured_ns)}
        requests.post(args.url, data=data, timeout=5)  # a new connection every frame

    _pace(args, send)


def _pace(args: argparse.Namespace, send: object) -> None:
    """Pre-decoded clip frames, sent at --fps (0: as fast as the loop goes), forever."""
    from bench.clip import load_frames

    frames = load_frames(Path(args.clip), args.frames)
    period = 1.0 / args.fps if args.fps else 0.0
    next_at = time.monotonic()
    seq = 0
    while True:
        for frame in frames:
            seq += 1
            if period:
                next_at += period
                now = time.monotonic()
                if now - next_at > period:  # fell behind: restart from now, never burst
                    next_at = now
                time.sleep(max(0.0, next_at - now))
            send(seq, frame)  # type: ignore[operator]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.classic")
    parser.add_argument("role", choices=["redis-receiver", "redis-sender", "http-receiver", "http-sender"])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--url", default="http://127.0.0.1:5000/frame")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--log", default="classic.csv")
    parser.add_argument("--clip", default="")
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--quality", type=int, default=80)
    args = parser.parse_args()
    roles = {
        "redis-receiver": redis_receiver,
        "redis-sender": redis_sender,
        "http-receiver": http_receiver,
        "http-sender": http_sender,
    }
    roles[args.role](args)


if __name__ == "__main__":
    main()
