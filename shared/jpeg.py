"""What a JPEG says about itself, read from its own header without decoding it.

A JPEG of a few hundred bytes can claim 65535x65535 pixels; decoding it costs what that
claim costs (a full-size output buffer, and for a progressive JPEG the coefficients of the
whole image), and OpenCV's own pixel cap is checked against the *reduced* output size. So
every consumer reads the real size from the frame header (SOF marker) first and refuses a
frame above the limits below before anything decodes it.

The walk visits each marker segment once by its length field, so its work is bounded by the
header's size (a few dozen segments in practice), never by the image's pixel count.
"""

from __future__ import annotations

from dataclasses import dataclass

# A 8K frame (7680x4320) is 33 MP: every camera we know of fits under this, and a baseline
# decode of it needs ~120 MB of output buffer, once per render thread.
MAX_FRAME_PIXELS = 40_000_000
# A progressive decode holds the whole image's DCT coefficients (2 bytes per sample, all
# components) on top of the output, so the same pixels cost ~3x the memory: a lower limit.
MAX_PROGRESSIVE_PIXELS = 12_000_000
# Each side, as in the wire format's width/height (shared/wire.MAX_DIMENSION).
MAX_SIDE = 16384

_SOI = 0xD8
_EOI = 0xD9
_SOS = 0xDA
# Start-of-frame markers (C4 is DHT, C8 is reserved, CC is DAC: not frame headers).
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_PROGRESSIVE_SOF = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
# Markers that stand alone, without a length field: TEM and the restart markers.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


class JpegHeaderError(ValueError):
    """The bytes do not start with a well-formed JPEG header (SOI … SOF … SOS)."""


class JpegTooLarge(JpegHeaderError):
    """The header is well-formed but claims more pixels than a frame may have."""


@dataclass(frozen=True, slots=True)
class JpegInfo:
    width: int
    height: int
    components: int  # 1 grey, 3 colour (YCbCr or RGB), 4 CMYK/YCCK
    progressive: bool
    precision: int  # bits per sample, 8 for every camera JPEG

    @property
    def pixels(self) -> int:
        return self.width * self.height


def read_header(data: bytes) -> JpegInfo:
    """The frame header's facts; raises JpegHeaderError if the header is malformed or cut short.

    Walks SOI, then each marker segment by its length, up to the first SOS (start of scan),
    so a header missing its frame header, with two of them, or truncated is refused.
    """
    view = memoryview(data)
    if len(view) < 4 or view[0] != 0xFF or view[1] != _SOI:
        raise JpegHeaderError("not a JPEG (missing SOI marker)")
    pos = 2
    info: JpegInfo | None = None
    while True:
        marker, pos = _next_marker(view, pos)
        if marker in _STANDALONE:
            continue
        length = _segment_length(view, pos, marker)
        if marker in _SOF_MARKERS:
            if info is not None:
                raise JpegHeaderError("two frame headers (SOF) in one JPEG")
            info = _parse_sof(view[pos + 2 : pos + length], marker)
        elif marker == _SOS:
            if info is None:
                raise JpegHeaderError("no frame header (SOF) before the first scan")
            return info
        pos += length


def _segment_length(view: memoryview, pos: int, marker: int) -> int:
    """The length of the marker segment starting at ``pos`` (its two length bytes included)."""
    if marker in (_SOI, _EOI) or marker == 0x00:
        raise JpegHeaderError(f"unexpected marker FF{marker:02X} before the first scan")
    if pos + 2 > len(view):
        raise JpegHeaderError("truncated JPEG header")
    length = (view[pos] << 8) | view[pos + 1]
    if length < 2 or pos + length > len(view):
        raise JpegHeaderError(f"truncated or malformed JPEG segment FF{marker:02X}")
    return length


def _next_marker(view: memoryview, pos: int) -> tuple[int, int]:
    """(marker code, position after it); fill bytes (extra FFs) before a marker are allowed."""
    if pos >= len(view) or view[pos] != 0xFF:
        raise JpegHeaderError("truncated JPEG header" if pos >= len(view) else "JPEG marker expected")
    while pos < len(view) and view[pos] == 0xFF:
        pos += 1
    if pos >= len(view):
        raise JpegHeaderError("truncated JPEG header")
    return view[pos], pos + 1


def _parse_sof(body: memoryview, marker: int) -> JpegInfo:
    if len(body) < 6:
        raise JpegHeaderError("frame header (SOF) too short")
    precision = body[0]
    height = (body[1] << 8) | body[2]
    width = (body[3] << 8) | body[4]
    components = body[5]
    if len(body) != 6 + 3 * components:
        raise JpegHeaderError("frame header (SOF) length does not match its component count")
    if not 1 <= components <= 4:
        raise JpegHeaderError(f"{components} colour components (1 to 4 expected)")
    if width == 0 or height == 0:
        # Height 0 means "given later by a DNL marker", which libjpeg does not support either.
        raise JpegHeaderError(f"frame header claims {width}x{height} pixels")
    return JpegInfo(width, height, components, marker in _PROGRESSIVE_SOF, precision)


def check_size(info: JpegInfo) -> None:
    """Raise JpegTooLarge, naming the limit, for a frame bigger than a frame may be."""
    if info.width > MAX_SIDE or info.height > MAX_SIDE:
        raise JpegTooLarge(f"JPEG is {info.width}x{info.height}: each side is limited to {MAX_SIDE} pixels")
    if info.progressive and info.pixels > MAX_PROGRESSIVE_PIXELS:
        raise JpegTooLarge(
            f"progressive JPEG of {info.width}x{info.height} = {info.pixels} pixels exceeds "
            f"the limit of {MAX_PROGRESSIVE_PIXELS} pixels for progressive JPEGs"
        )
    if info.pixels > MAX_FRAME_PIXELS:
        raise JpegTooLarge(
            f"JPEG of {info.width}x{info.height} = {info.pixels} pixels exceeds "
            f"the limit of {MAX_FRAME_PIXELS} pixels"
        )


def read_checked_header(data: bytes) -> JpegInfo:
    """The header's facts, refusing a malformed header (JpegHeaderError) or a too-large frame
    (JpegTooLarge): call this before handing bytes to any decoder."""
    info = read_header(data)
    check_size(info)
    return info
