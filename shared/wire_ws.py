"""The gateway's WebSocket frame message: u32 big-endian header length, JSON header, JPEG.

See docs/protocol.md; the metadata rules are :mod:`shared.wire`'s.
"""

from __future__ import annotations

import json
import struct
from dataclasses import asdict

from shared.wire import DeclaredMeta, FrameMeta, WireError

_WS_HEADER_LEN = struct.Struct(">I")
# A subscriber of /cameras/{camera}/ws?pull=1 sends this text message for each frame it wants.
PULL_REQUEST = "next"
# Both ends of the gateway's WebSocket ping this often; a peer silent for longer is gone.
WS_HEARTBEAT_SECONDS = 10.0
MAX_WS_HEADER_BYTES = 4096


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
        declared = DeclaredMeta(
            camera=_strict_str(header, "camera"),
            seq=_strict_int(header, "seq"),
            captured_ns=_strict_int(header, "captured_ns"),
            sent_ns=_strict_int(header, "sent_ns"),
            width=_strict_int(header, "width") if "width" in header else None,
            height=_strict_int(header, "height") if "height" in header else None,
        )
    except KeyError as exc:
        raise WireError(f"missing field {exc.args[0]}") from None
    jpeg = message[start + header_len :]
    return declared.with_jpeg(jpeg), jpeg


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
