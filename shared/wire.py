"""The framebus wire format, byte for byte (see docs/protocol.md).

A frame is one JPEG plus its metadata. The same metadata travels three ways:
Redis Stream fields, HTTP headers on ingest, and a JSON header in front of the JPEG in a
WebSocket message (:mod:`shared.wire_ws`). Everything here is pure and raises
:class:`WireError` on bad input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.jpeg import MAX_SIDE, JpegHeaderError, JpegInfo, JpegTooLarge, read_checked_header
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

MAX_DIMENSION = MAX_SIDE
_MAX_INT64 = 2**63 - 1
# Timestamps are Unix epoch nanoseconds. Anything before 2001-09-09T01:46:40Z (1e18 ns) is
# not: milliseconds or microseconds sent as nanoseconds land far below it, and would poison
# every latency figure. The upper bound (2100-01-01) refuses seconds-times-a-billion mistakes.
MIN_PLAUSIBLE_NS = 10**18
MAX_PLAUSIBLE_NS = 4_102_444_800 * 10**9

# Reasons a WireError carries (the gateway's rejection label, the viewer's malformed reason).
REASON_MALFORMED = "malformed"
REASON_NOT_JPEG = "not_jpeg"
REASON_TOO_MANY_PIXELS = "too_many_pixels"
REASON_SIZE_MISMATCH = "size_mismatch"
REASON_BAD_TIMESTAMP = "bad_timestamp"


class WireError(ValueError):
    """The bytes or fields do not form a valid framebus frame.

    ``reason`` is a short label for counters (one of the ``REASON_*`` constants).
    """

    def __init__(self, message: str, reason: str = REASON_MALFORMED) -> None:
        super().__init__(message)
        self.reason = reason


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
        _check_common(self.seq, self.captured_ns, self.sent_ns)
        for name in ("width", "height"):
            if not 0 < getattr(self, name) <= MAX_DIMENSION:
                raise WireError(f"{name} out of range")


@dataclass(frozen=True, slots=True)
class DeclaredMeta:
    """Metadata as a producer declared it before its JPEG is read: width and height are
    optional (the JPEG's own header says them). :meth:`with_jpeg` makes the real FrameMeta."""

    camera: str
    seq: int
    captured_ns: int
    sent_ns: int
    width: int | None = None
    height: int | None = None

    def __post_init__(self) -> None:
        if not CAMERA_ID_PATTERN.fullmatch(self.camera):
            raise WireError(f"invalid camera id {self.camera[:80]!r}")
        _check_common(self.seq, self.captured_ns, self.sent_ns)
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and not 0 < value <= MAX_DIMENSION:
                raise WireError(f"{name} out of range")

    def with_jpeg(self, jpeg: bytes) -> FrameMeta:
        """The frame's metadata, once its JPEG has passed :func:`check_jpeg`: a declared size
        must match the JPEG's header (else ``size_mismatch``); an absent one is taken from it."""
        info = check_jpeg(jpeg)
        return FrameMeta(
            self.camera,
            self.seq,
            self.captured_ns,
            self.sent_ns,
            _matching("width", self.width, info.width),
            _matching("height", self.height, info.height),
        )


def _check_common(seq: int, captured_ns: int, sent_ns: int) -> None:
    if not 0 <= seq <= _MAX_INT64:
        raise WireError("seq out of range")
    for name, value in (("captured_ns", captured_ns), ("sent_ns", sent_ns)):
        if not MIN_PLAUSIBLE_NS <= value <= MAX_PLAUSIBLE_NS:
            raise WireError(
                f"{name}={value} is not plausible Unix epoch nanoseconds (expected "
                f"{MIN_PLAUSIBLE_NS} to {MAX_PLAUSIBLE_NS}; milliseconds or seconds sent as nanoseconds?)",
                REASON_BAD_TIMESTAMP,
            )


def _matching(name: str, declared: int | None, actual: int) -> int:
    if declared is not None and declared != actual:
        raise WireError(
            f"{name} {declared} does not match the JPEG's own header ({actual})", REASON_SIZE_MISMATCH
        )
    return actual


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
    """A Redis Stream entry as (metadata, JPEG); ``width``/``height`` may be absent."""
    jpeg = fields.get(FIELD_JPEG)
    if jpeg is None:
        raise WireError("missing field jpeg")
    declared = DeclaredMeta(
        camera=_text(fields.get(b"camera"), "camera"),
        seq=_parse_int("seq", fields.get(b"seq")),
        captured_ns=_parse_int("captured_ns", fields.get(b"captured_ns")),
        sent_ns=_parse_int("sent_ns", fields.get(b"sent_ns", fields.get(b"captured_ns"))),
        width=_optional_int("width", fields.get(b"width")),
        height=_optional_int("height", fields.get(b"height")),
    )
    return declared.with_jpeg(jpeg), jpeg


def _optional_int(name: str, raw: bytes | str | None) -> int | None:
    return None if raw is None else _parse_int(name, raw)


# --- HTTP ingest headers ------------------------------------------------------------------


def to_headers(meta: FrameMeta) -> dict[str, str]:
    return {
        HEADER_SEQ: str(meta.seq),
        HEADER_CAPTURED_NS: str(meta.captured_ns),
        HEADER_SENT_NS: str(meta.sent_ns),
        HEADER_WIDTH: str(meta.width),
        HEADER_HEIGHT: str(meta.height),
    }


def parse_headers(camera: str, headers: Mapping[str, str]) -> DeclaredMeta:
    """Metadata of an ingested frame, before its body is read (X-Frame-Seq and
    X-Frame-Captured-Ns are required; Sent-Ns, Width and Height optional). The gateway then
    calls :meth:`DeclaredMeta.with_jpeg` on the body."""
    captured = _parse_int(HEADER_CAPTURED_NS, headers.get(HEADER_CAPTURED_NS))
    return DeclaredMeta(
        camera=camera,
        seq=_parse_int(HEADER_SEQ, headers.get(HEADER_SEQ)),
        captured_ns=captured,
        sent_ns=_parse_int(HEADER_SENT_NS, headers.get(HEADER_SENT_NS, str(captured))),
        width=_optional_int(HEADER_WIDTH, headers.get(HEADER_WIDTH)),
        height=_optional_int(HEADER_HEIGHT, headers.get(HEADER_HEIGHT)),
    )


def from_headers(camera: str, headers: Mapping[str, str]) -> FrameMeta:
    """Metadata from headers that declare everything, width and height included (what
    ``latest.jpg`` answers with). Ingest should use :func:`parse_headers` instead, which
    lets the JPEG's header supply or check the size."""
    declared = parse_headers(camera, headers)
    if declared.width is None:
        raise WireError(f"missing field {HEADER_WIDTH}")
    if declared.height is None:
        raise WireError(f"missing field {HEADER_HEIGHT}")
    return FrameMeta(
        declared.camera, declared.seq, declared.captured_ns, declared.sent_ns, declared.width, declared.height
    )


# --- JPEG check (cheap: markers and the frame header only; decoding is the consumer's job) ---

MIN_JPEG_BYTES = 100  # the smallest valid baseline JPEGs are a little over 100 bytes


def check_jpeg(data: bytes) -> JpegInfo:
    """The JPEG's header facts; raises WireError unless the bytes start with a well-formed
    header (SOI, frame header, start of scan; reason ``not_jpeg``) and end with EOI, and the
    frame is within the pixel limits of shared/jpeg.py (reason ``too_many_pixels``)."""
    if len(data) < MIN_JPEG_BYTES:
        raise WireError("too short to be a JPEG" if data else "empty body", REASON_NOT_JPEG)
    if data[:3] != b"\xff\xd8\xff":
        raise WireError("not a JPEG (missing SOI marker)", REASON_NOT_JPEG)
    # Some encoders pad after EOI; allow a few bytes of trailing padding.
    if b"\xff\xd9" not in data[-16:]:
        raise WireError("truncated JPEG (missing EOI marker)", REASON_NOT_JPEG)
    try:
        return read_checked_header(data)
    except JpegTooLarge as exc:
        raise WireError(str(exc), REASON_TOO_MANY_PIXELS) from None
    except JpegHeaderError as exc:
        raise WireError(f"malformed JPEG header: {exc}", REASON_NOT_JPEG) from None
