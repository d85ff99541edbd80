"""shared/jpeg.py: the JPEG's own header read without decoding, and the pixel limits."""

from __future__ import annotations

import contextlib
import struct

import cv2
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from shared.jpeg import (
    MAX_FRAME_PIXELS,
    MAX_PROGRESSIVE_PIXELS,
    MAX_SIDE,
    JpegHeaderError,
    JpegTooLarge,
    read_checked_header,
    read_header,
)
from tests.fixtures.bombs import jpeg_bomb, small_jpeg, sof_offset, with_claimed_size


def encoded(width: int, height: int, *, progressive: bool = False, grey: bool = False) -> bytes:
    shape = (height, width) if grey else (height, width, 3)
    image = np.random.default_rng(2).integers(0, 255, shape, dtype=np.uint8)
    params = [cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)]
    return bytes(cv2.imencode(".jpg", image, params)[1].tobytes())


@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("grey", [False, True])
@pytest.mark.parametrize(("width", "height"), [(640, 480), (1280, 720), (17, 3), (1, 1)])
def test_header_gives_the_real_size_components_and_mode(
    width: int, height: int, progressive: bool, grey: bool
) -> None:
    info = read_header(encoded(width, height, progressive=progressive, grey=grey))
    assert (info.width, info.height) == (width, height)
    assert info.components == (1 if grey else 3)
    assert info.progressive is progressive
    assert info.precision == 8


def app_segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def test_a_thumbnail_inside_an_app_segment_is_not_mistaken_for_the_frame() -> None:
    thumbnail = small_jpeg(width=8, height=8)
    main = encoded(64, 48)
    with_exif = main[:2] + app_segment(0xE1, b"Exif\0\0" + thumbnail) + main[2:]
    assert (read_header(with_exif).width, read_header(with_exif).height) == (64, 48)
    assert np.asarray(cv2.imdecode(np.frombuffer(with_exif, np.uint8), cv2.IMREAD_COLOR)).shape == (48, 64, 3)


def test_fill_bytes_before_a_marker_are_allowed() -> None:
    main = encoded(64, 48)
    padded = main[:2] + b"\xff\xff\xff" + main[2:]
    assert read_header(padded).width == 64


def test_every_truncation_of_the_header_is_refused() -> None:
    jpeg = encoded(64, 48)
    sos = jpeg.index(b"\xff\xda")
    for cut in range(sos + 4):
        with pytest.raises(JpegHeaderError):
            read_header(jpeg[:cut])


def test_a_scan_before_any_frame_header_is_refused() -> None:
    jpeg = encoded(64, 48)
    sos = jpeg.index(b"\xff\xda")
    sof = sof_offset(jpeg) - 5
    length = struct.unpack_from(">H", jpeg, sof + 2)[0]
    without_sof = jpeg[:sof] + jpeg[sof + 2 + length :]
    assert b"\xff\xda" in without_sof and sos > sof
    with pytest.raises(JpegHeaderError, match="no frame header"):
        read_header(without_sof)


def test_two_frame_headers_are_refused() -> None:
    jpeg = encoded(64, 48)
    sof = sof_offset(jpeg) - 5
    length = struct.unpack_from(">H", jpeg, sof + 2)[0]
    segment = jpeg[sof : sof + 2 + length]
    with pytest.raises(JpegHeaderError, match="two frame headers"):
        read_header(jpeg[:sof] + segment + jpeg[sof:])


@pytest.mark.parametrize(("width", "height"), [(0, 48), (64, 0)])
def test_a_zero_side_is_refused(width: int, height: int) -> None:
    with pytest.raises(JpegHeaderError, match="claims"):
        read_header(with_claimed_size(small_jpeg(), width, height))


def test_not_a_jpeg_is_refused() -> None:
    for data in (b"", b"\xff\xd8", b"GIF89a" + b"\0" * 200, b"\xff\xd8\xff\xd9" + b"\0" * 200):
        with pytest.raises(JpegHeaderError):
            read_header(data)


@pytest.mark.parametrize("grey", [False, True])
@pytest.mark.parametrize("progressive", [False, True])
def test_decompression_bombs_are_refused_naming_the_limit(progressive: bool, grey: bool) -> None:
    bomb = jpeg_bomb(60000, 60000, progressive=progressive, grey=grey)
    assert len(bomb) < 1000
    with pytest.raises(JpegTooLarge, match=str(MAX_SIDE)):
        read_checked_header(bomb)
    within_sides = jpeg_bomb(16000, 16000, progressive=progressive, grey=grey)
    limit = MAX_PROGRESSIVE_PIXELS if progressive else MAX_FRAME_PIXELS
    with pytest.raises(JpegTooLarge, match=str(limit)):
        read_checked_header(within_sides)


def test_the_pixel_limits_are_inclusive() -> None:
    side = MAX_SIDE
    rows = MAX_FRAME_PIXELS // side
    assert read_checked_header(jpeg_bomb(side, rows)).pixels <= MAX_FRAME_PIXELS
    with pytest.raises(JpegTooLarge):
        read_checked_header(jpeg_bomb(side, rows + 1))
    rows = MAX_PROGRESSIVE_PIXELS // 4000
    assert read_checked_header(jpeg_bomb(4000, rows, progressive=True)).progressive
    with pytest.raises(JpegTooLarge, match="progressive"):
        read_checked_header(jpeg_bomb(4000, rows + 1, progressive=True))
    # The same size in baseline is allowed: only progressive decoding holds every coefficient.
    assert not read_checked_header(jpeg_bomb(4000, rows + 1)).progressive


HEADER = encoded(64, 48)[:400]


@settings(max_examples=400)
@given(st.integers(0, len(HEADER) - 1), st.integers(0, 255))
def test_any_corrupted_header_byte_gives_facts_or_a_header_error(at: int, value: int) -> None:
    data = HEADER[:at] + bytes([value]) + HEADER[at + 1 :]
    with contextlib.suppress(JpegHeaderError):
        read_header(data)


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_after_soi_give_facts_or_a_header_error(tail: bytes) -> None:
    with contextlib.suppress(JpegHeaderError):
        read_header(b"\xff\xd8" + tail)


def test_a_header_of_nothing_but_fill_bytes_ends_as_truncated() -> None:
    # A megabyte of fill bytes is walked once (pytest's timeout catches a walk that never ends).
    with pytest.raises(JpegHeaderError, match="truncated"):
        read_header(b"\xff\xd8" + b"\xff" * 1_000_000)
