"""The results wire format: what an algorithm found in one frame (see docs/protocol.md, "Results").

A result names its frame (camera, seq, captured_ns), the frame's size (box coordinates are
source-frame pixels), a list of boxes with labels and scores, and free JSON. It travels as one
JSON document: a field ``result`` in the Redis Stream ``framebus:results:<camera>`` (bounded
like frames, MAXLEN exact) or the body of ``POST /cameras/{camera}/results`` on the gateway.
Everything here is pure and raises :class:`ResultError` on bad input.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from shared.redisconn import RedisClient, entry_age
from shared.settings import CAMERA_ID_RULE, is_camera_id
from shared.wire import MAX_DIMENSION

RESULTS_KEY_PREFIX = "framebus:results:"
FIELD_RESULT = b"result"
RESULTS_MAXLEN = 16  # newest results kept per camera; readers want the newest one
MAX_RESULT_BYTES = 64 * 1024
MAX_BOXES = 256
MAX_TEXT_CHARS = 64  # labels and the source (algorithm) name
_MAX_INT64 = 2**63 - 1
RESULT_FIELDS = frozenset(
    {"camera", "seq", "captured_ns", "published_ns", "width", "height", "boxes", "data", "source"}
)


class ResultError(ValueError):
    """The bytes or fields do not form a valid result."""


@dataclass(frozen=True, slots=True)
class Box:
    """A rectangle in source-frame pixels: top-left (x, y), size (w, h)."""

    x: float
    y: float
    w: float
    h: float
    label: str = ""
    score: float | None = None  # 0..1

    def __post_init__(self) -> None:
        for name in ("x", "y", "w", "h"):
            value = getattr(self, name)
            if not _is_number(value) or not -MAX_DIMENSION <= value <= 2 * MAX_DIMENSION:
                raise ResultError(f"box {name} must be a finite number of pixels")
        if self.w < 0 or self.h < 0:
            raise ResultError("box w and h must not be negative")
        if not isinstance(self.label, str) or len(self.label) > MAX_TEXT_CHARS:
            raise ResultError(f"box label must be a string of at most {MAX_TEXT_CHARS} characters")
        if self.score is not None and (not _is_number(self.score) or not 0 <= self.score <= 1):
            raise ResultError("box score must be a number from 0 to 1")

    def to_dict(self) -> dict[str, Any]:
        box: dict[str, Any] = {"x": self.x, "y": self.y, "w": self.w, "h": self.h, "label": self.label}
        if self.score is not None:
            box["score"] = self.score
        return box


@dataclass(frozen=True, slots=True)
class FrameResult:
    camera: str
    seq: int  # the frame's sequence number
    captured_ns: int  # the frame's capture time (Unix epoch ns)
    published_ns: int  # when the algorithm published this result (Unix epoch ns)
    width: int  # the frame's size: the coordinate space of the boxes
    height: int
    boxes: tuple[Box, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)  # free JSON object
    source: str = ""  # the algorithm's name

    def __post_init__(self) -> None:
        if not is_camera_id(self.camera):
            raise ResultError(CAMERA_ID_RULE)
        for name in ("seq", "captured_ns", "published_ns"):
            value = getattr(self, name)
            if not _is_int(value) or not 0 <= value <= _MAX_INT64:
                raise ResultError(f"{name} must be an integer from 0 to 2^63-1")
        for name in ("width", "height"):
            value = getattr(self, name)
            if not _is_int(value) or not 0 < value <= MAX_DIMENSION:
                raise ResultError(f"{name} must be an integer from 1 to {MAX_DIMENSION}")
        if len(self.boxes) > MAX_BOXES:
            raise ResultError(f"at most {MAX_BOXES} boxes per result")
        if not isinstance(self.data, dict):
            raise ResultError("data must be a JSON object")
        if not isinstance(self.source, str) or len(self.source) > MAX_TEXT_CHARS:
            raise ResultError(f"source must be a string of at most {MAX_TEXT_CHARS} characters")

    @property
    def latency_seconds(self) -> float:
        """Frame captured → result published (clocks of two hosts may disagree: never < 0)."""
        return max(0, self.published_ns - self.captured_ns) / 1e9

    def to_dict(self) -> dict[str, Any]:
        return {
            "camera": self.camera,
            "seq": self.seq,
            "captured_ns": self.captured_ns,
            "published_ns": self.published_ns,
            "width": self.width,
            "height": self.height,
            "boxes": [box.to_dict() for box in self.boxes],
            "data": self.data,
            "source": self.source,
        }


def results_key(camera: str) -> str:
    return RESULTS_KEY_PREFIX + camera


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def make_boxes(boxes: Iterable[Box | Mapping[str, Any]]) -> tuple[Box, ...]:
    """Boxes from Box objects or dicts with x, y, w, h and optional label, score."""
    made = []
    for index, box in enumerate(boxes):
        if index >= MAX_BOXES:
            raise ResultError(f"at most {MAX_BOXES} boxes per result")
        if isinstance(box, Box):
            made.append(box)
            continue
        if not isinstance(box, Mapping):
            raise ResultError("each box must be an object with x, y, w, h")
        unknown = set(box) - {"x", "y", "w", "h", "label", "score"}
        if unknown:
            raise ResultError(f"unknown box field(s): {', '.join(sorted(map(str, unknown)))[:200]}")
        try:
            made.append(Box(box["x"], box["y"], box["w"], box["h"], box.get("label", ""), box.get("score")))
        except KeyError as exc:
            raise ResultError(f"box lacks {exc.args[0]}") from None
    return tuple(made)


def to_json(result: FrameResult) -> bytes:
    try:
        encoded = json.dumps(result.to_dict(), separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError, RecursionError) as exc:  # data holds something JSON cannot
        raise ResultError(f"data is not JSON-serialisable: {exc}") from None
    if len(encoded) > MAX_RESULT_BYTES:
        raise ResultError(f"result exceeds {MAX_RESULT_BYTES} bytes as JSON")
    return encoded


def from_json(raw: bytes | str, camera: str | None = None) -> FrameResult:
    """Parse and validate; ``camera`` (from a URL or stream key) must match the body's, if set."""
    if len(raw) > MAX_RESULT_BYTES:
        raise ResultError(f"result exceeds {MAX_RESULT_BYTES} bytes")
    try:
        body = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:  # bad UTF-8, bad JSON, NaN, deep nesting
        raise ResultError(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ResultError("result must be a JSON object")
    if camera is not None:
        body.setdefault("camera", camera)
        if body["camera"] != camera:
            raise ResultError(f"result of camera {str(body['camera'])[:80]!r} sent for camera {camera}")
    unknown = set(body) - {
        "camera",
        "seq",
        "captured_ns",
        "published_ns",
        "width",
        "height",
        "boxes",
        "data",
        "source",
    }
    if unknown:
        raise ResultError(f"unknown field(s): {', '.join(sorted(unknown))[:200]}")
    boxes = body.get("boxes", [])
    if not isinstance(boxes, list):
        raise ResultError("boxes must be a list")
    try:
        return FrameResult(
            camera=body["camera"],
            seq=body["seq"],
            captured_ns=body["captured_ns"],
            published_ns=body["published_ns"],
            width=body["width"],
            height=body["height"],
            boxes=make_boxes(boxes),
            data=body.get("data", {}),
            source=body.get("source", ""),
        )
    except KeyError as exc:
        raise ResultError(f"missing field {exc.args[0]}") from None


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def to_stream_fields(result: FrameResult) -> dict[str, bytes]:
    return {FIELD_RESULT.decode(): to_json(result)}


def from_stream_fields(fields: Mapping[bytes, bytes], camera: str) -> FrameResult:
    raw = fields.get(FIELD_RESULT)
    if raw is None:
        raise ResultError("missing field result")
    return from_json(raw, camera)


async def newest_result(client: RedisClient, camera: str) -> tuple[FrameResult, float] | None:
    """The newest result in the camera's results stream, with its age in seconds (from the entry
    id, Redis's clock); None when there is none. Raises ResultError for a malformed entry."""
    entries = cast(
        list[tuple[bytes, dict[bytes, bytes]]], await client.xrevrange(results_key(camera), count=1)
    )
    if not entries:
        return None
    entry_id, fields = entries[0]
    return from_stream_fields(fields, camera), entry_age(entry_id)
