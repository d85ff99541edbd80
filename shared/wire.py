"""The framebus wire format, byte for byte (see docs/protocol.md).

A frame is one JPEG plus its metadata. The same metadata travels three ways:
Redis Stream fields, HTTP headers on ingest, and a JSON header in front of the JPEG in a
WebSocket message. Everything here is pure and raises :class:`WireError` on bad input.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from shared.settings import CAMERA_ID_PATTERN

STREAM_KEY_PREFIX = "framebus:frames:"

FIELD_JPEG = b"jpeg"
META_FIELDS = ("camera", "seq", "captured_ns", "sent_ns", "width", "height")

HEADER_SEQ = "X-Frame-Seq"
HEADER_CAPTURED_NS = "X-Frame-Captured-Ns"
HEADER_SENT_NS = "X-Frame-Sent-Ns"
HEADER_WIDTH = "X-Frame-Width"
HEADER_HEIGHT = "X-Frame-Height"
HEADER_CAMERA = "X-Frame-Camera"
HEADER_AGE = "X-Frame-Age-Seconds"

_WS_HEADER_LEN = struct.Struct(">I")
# A subscriber of /cameras/{camera}/ws?pull=1 sends this text message for each frame it wants.
PULL_REQUEST = "next"
# Both ends of the gateway's WebSocket ping this often; a peer silent for longer is gone.
WS_HEARTBEAT_SECONDS = 10.0
MAX_WS_HEADER_BYTES = 4096
MAX_DIMENSION = 16384
_MAX_INT64 = 2**63 - 1


class WireError(ValueError):
    """The bytes or fields do not form a valid framebus frame."""


@dataclass(frozen=True, slots=True)
class FrameMeta:
    camera: str
    seq: int
    captured_ns: int  # Unix epoch nanoseconds when the source returned the frame
    sent_ns: int  # Unix epoch nanoseconds when the encoded frame was handed to the transport
    width: int
    height: int

    def __post_init__(self) -> None:
        if not CAMERA_ID_PATTERN.fullmatch(self.camera):
            raise WireError(f"invalid camera id {self.camera[:80]!r}")
        for name in ("seq", "captured_ns", "sent_ns"):
            if not 0 <= getattr(self, name) <= _MAX_INT64:
                raise WireError(f"{name} out of range")
        for name in ("width", "height"):
            if not 0 < getattr(self, name) <= MAX_DIMENSION:
                raise WireError(f"{name} out of range")


def stream_key(camera: str) -> str:
    return STREAM_KEY_PREFIX + camera


def _parse_int(name: str, raw: bytes | str | None) -> int:
    if raw is None:
        raise WireError(f"missing field {name}")
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw
    # isdigit() alone accepts other scripts' digits ("²" then makes int() raise ValueError).
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        raise WireError(f"field {name} must be a non-negative decimal integer")
    return int(text)


def _text(raw: bytes | str | None, name: str) -> str:
    if raw is None:
        raise WireError(f"missing field {name}")
    return raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw


# --- Redis Stream entry -------------------------------------------------------------------


def to_stream_fields(meta: FrameMeta, jpeg: bytes) -> dict[str, bytes | int | str]:
    return {
        "camera": meta.camera,
        "seq": meta.seq,
        "captured_ns": meta.captured_ns,
        "sent_ns": meta.sent_ns,
        "width": meta.width,
        "height": meta.height,
        "jpeg": jpeg,
    }


def from_stream_fields(fields: Mapping[bytes, bytes]) -> tuple[FrameMeta, bytes]:
    jpeg = fields.get(FIELD_JPEG)
    if jpeg is None:
        raise WireError("missing field jpeg")
    meta = FrameMeta(
        camera=_text(fields.get(b"camera"), "camera"),
        seq=_parse_int("seq", fields.get(b"seq")),
        captured_ns=_parse_int("captured_ns", fields.get(b"captured_ns")),
        sent_ns=_parse_int("sent_ns", fields.get(b"sent_ns", fields.get(b"captured_ns"))),
        width=_parse_int("width", fields.get(b"width")),
        height=_parse_int("height", fields.get(b"height")),
    )
    check_jpeg(jpeg)
    return meta, jpeg


# --- HTTP ingest headers ------------------------------------------------------------------


def to_headers(meta: FrameMeta) -> dict[str, str]:
    return {
        HEADER_SEQ: str(meta.seq),
        HEADER_CAPTURED_NS: str(meta.captured_ns),
        HEADER_SENT_NS: str(meta.sent_ns),
        HEADER_WIDTH: str(meta.width),
        HEADER_HEIGHT: str(meta.height),
    }


def from_headers(camera: str, headers: Mapping[str, str]) -> FrameMeta:
    """Metadata of an ingested frame (every header but X-Frame-Sent-Ns is required)."""
    captured = _parse_int(HEADER_CAPTURED_NS, headers.get(HEADER_CAPTURED_NS))
    return FrameMeta(
        camera=camera,
        seq=_parse_int(HEADER_SEQ, headers.get(HEADER_SEQ)),
        captured_ns=captured,
        sent_ns=_parse_int(HEADER_SENT_NS, headers.get(HEADER_SENT_NS, str(captured))),
        width=_parse_int(HEADER_WIDTH, headers.get(HEADER_WIDTH)),
        height=_parse_int(HEADER_HEIGHT, headers.get(HEADER_HEIGHT)),
    )


# --- WebSocket message: u32 big-endian header length, JSON header, JPEG --------------------


def to_ws_message(meta: FrameMeta, jpeg: bytes) -> bytes:
    header = json.dumps(asdict(meta), separators=(",", ":")).encode()
    return _WS_HEADER_LEN.pack(len(header)) + header + jpeg


def from_ws_message(message: bytes) -> tuple[FrameMeta, bytes]:
    if len(message) < _WS_HEADER_LEN.size:
        raise WireError("message shorter than its length prefix")
    (header_len,) = _WS_HEADER_LEN.unpack_from(message)
    if header_len > MAX_WS_HEADER_BYTES or header_len > len(message) - _WS_HEADER_LEN.size:
        raise WireError("header length out of range")
    start = _WS_HEADER_LEN.size
    try:
        header = json.loads(message[start : start + header_len])
    except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON; deep nesting recurses
        raise WireError(f"header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise WireError("header is not a JSON object")
    try:
        meta = FrameMeta(
            camera=_strict_str(header, "camera"),
            seq=_strict_int(header, "seq"),
            captured_ns=_strict_int(header, "captured_ns"),
            sent_ns=_strict_int(header, "sent_ns"),
            width=_strict_int(header, "width"),
            height=_strict_int(header, "height"),
        )
    except KeyError as exc:
        raise WireError(f"missing field {exc.args[0]}") from None
    jpeg = message[start + header_len :]
    check_jpeg(jpeg)
    return meta, jpeg


def _strict_str(header: dict[str, object], name: str) -> str:
    value = header[name]
    if not isinstance(value, str):
        raise WireError(f"field {name} must be a string")
    return value


def _strict_int(header: dict[str, object], name: str) -> int:
    value = header[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise WireError(f"field {name} must be an integer")
    return value


# --- JPEG sanity check (cheap: markers only; decoding is the viewer's job) -----------------

MIN_JPEG_BYTES = 100  # the smallest valid baseline JPEGs are a little over 100 bytes


def check_jpeg(data: bytes) -> None:
    """Raise WireError unless the bytes start with SOI and end with EOI, as every JPEG does."""
    if len(data) < MIN_JPEG_BYTES:
        raise WireError("too short to be a JPEG" if data else "empty body")
    if data[:3] != b"\xff\xd8\xff":
        raise WireError("not a JPEG (missing SOI marker)")
    # Some encoders pad after EOI; allow a few bytes of trailing padding.
    if b"\xff\xd9" not in data[-16:]:
        raise WireError("truncated JPEG (missing EOI marker)")
