"""shared/wire.py against metadata that lies: sizes checked against (or taken from) the JPEG's
own header, implausible timestamps refused, decompression bombs refused on every transport."""

from __future__ import annotations

import json
import struct
import time

import pytest

from shared.jpeg import MAX_FRAME_PIXELS
from shared.wire import (
    MIN_PLAUSIBLE_NS,
    REASON_BAD_TIMESTAMP,
    REASON_NOT_JPEG,
    REASON_SIZE_MISMATCH,
    REASON_TOO_MANY_PIXELS,
    DeclaredMeta,
    FrameMeta,
    WireError,
    check_jpeg,
    from_headers,
    from_stream_fields,
    parse_headers,
)
from shared.wire_ws import from_ws_message
from tests.fixtures.bombs import jpeg_bomb, small_jpeg, with_claimed_size

JPEG = with_claimed_size(small_jpeg(width=16, height=16), 16, 16)
NOW = time.time_ns()


def stream_fields(**override: bytes | None) -> dict[bytes, bytes]:
    fields: dict[bytes, bytes | None] = {
        b"camera": b"cam0",
        b"seq": b"7",
        b"captured_ns": str(NOW).encode(),
        b"sent_ns": str(NOW).encode(),
        b"width": b"16",
        b"height": b"16",
        b"jpeg": JPEG,
        **{k.encode(): v for k, v in override.items()},
    }
    return {k: v for k, v in fields.items() if v is not None}


def ws_message(jpeg: bytes = JPEG, **override: int | None) -> bytes:
    header: dict[str, object] = {
        "camera": "cam0",
        "seq": 7,
        "captured_ns": NOW,
        "sent_ns": NOW,
        "width": 16,
        "height": 16,
    }
    header.update(override)
    raw = json.dumps({k: v for k, v in header.items() if v is not None}).encode()
    return struct.pack(">I", len(raw)) + raw + jpeg


def http_headers(**override: str | None) -> dict[str, str]:
    headers: dict[str, str | None] = {
        "X-Frame-Seq": "7",
        "X-Frame-Captured-Ns": str(NOW),
        "X-Frame-Width": "16",
        "X-Frame-Height": "16",
        **override,
    }
    return {k: v for k, v in headers.items() if v is not None}


def test_check_jpeg_returns_the_header_facts() -> None:
    info = check_jpeg(JPEG)
    assert (info.width, info.height, info.components, info.progressive) == (16, 16, 3, False)


def test_a_stream_entry_without_a_size_takes_it_from_the_jpeg() -> None:
    meta, _ = from_stream_fields(stream_fields(width=None, height=None))
    assert (meta.width, meta.height) == (16, 16)


def test_a_stream_entry_whose_size_lies_is_refused() -> None:
    with pytest.raises(WireError, match="width 640 does not match") as caught:
        from_stream_fields(stream_fields(width=b"640"))
    assert caught.value.reason == REASON_SIZE_MISMATCH


def test_a_ws_message_without_a_size_takes_it_from_the_jpeg() -> None:
    meta, _ = from_ws_message(ws_message(width=None, height=None))
    assert (meta.width, meta.height) == (16, 16)


def test_a_ws_message_whose_size_lies_is_refused() -> None:
    with pytest.raises(WireError) as caught:
        from_ws_message(ws_message(height=9))
    assert caught.value.reason == REASON_SIZE_MISMATCH


def test_ingest_headers_may_leave_the_size_to_the_jpeg() -> None:
    declared = parse_headers("cam0", http_headers(**{"X-Frame-Width": None, "X-Frame-Height": None}))
    assert (declared.width, declared.height) == (None, None)
    assert declared.with_jpeg(JPEG) == FrameMeta("cam0", 7, NOW, NOW, 16, 16)


def test_ingest_headers_whose_size_lies_are_refused_once_the_body_is_read() -> None:
    declared = parse_headers("cam0", http_headers(**{"X-Frame-Width": "64"}))
    with pytest.raises(WireError, match="width 64 does not match the JPEG's own header") as caught:
        declared.with_jpeg(JPEG)
    assert caught.value.reason == REASON_SIZE_MISMATCH


def test_from_headers_still_needs_the_size_for_a_complete_frame_meta() -> None:
    with pytest.raises(WireError, match="X-Frame-Width"):
        from_headers("cam0", http_headers(**{"X-Frame-Width": None}))
    assert from_headers("cam0", http_headers()).width == 16


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("captured_ns", NOW // 1_000_000),  # milliseconds
        ("captured_ns", NOW // 1_000),  # microseconds
        ("sent_ns", NOW // 1_000_000_000),  # seconds
        ("captured_ns", 0),
        ("sent_ns", 5_000_000_000 * 10**9),  # year 2128
    ],
)
def test_timestamps_that_are_not_plausible_unix_nanoseconds_are_refused(name: str, value: int) -> None:
    with pytest.raises(WireError, match="not plausible Unix epoch nanoseconds") as caught:
        from_stream_fields(stream_fields(**{name: str(value).encode()}))
    assert caught.value.reason == REASON_BAD_TIMESTAMP
    with pytest.raises(WireError, match="milliseconds"):
        from_ws_message(ws_message(JPEG, **{name: value}))
    header = "X-Frame-Captured-Ns" if name == "captured_ns" else "X-Frame-Sent-Ns"
    with pytest.raises(WireError, match=name):
        parse_headers("cam0", http_headers(**{header: str(value)}))


def test_the_oldest_plausible_timestamp_is_accepted() -> None:
    meta, _ = from_stream_fields(stream_fields(captured_ns=str(MIN_PLAUSIBLE_NS).encode()))
    assert meta.captured_ns == MIN_PLAUSIBLE_NS


@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("grey", [False, True])
def test_a_decompression_bomb_is_refused_on_every_transport(progressive: bool, grey: bool) -> None:
    bomb = jpeg_bomb(16000, 16000, progressive=progressive, grey=grey)
    for parse in (
        lambda: from_stream_fields(stream_fields(jpeg=bomb, width=b"16000", height=b"16000")),
        lambda: from_ws_message(ws_message(bomb, width=16000, height=16000)),
        lambda: DeclaredMeta("cam0", 1, NOW, NOW).with_jpeg(bomb),
        lambda: check_jpeg(bomb),
    ):
        with pytest.raises(WireError, match="exceeds the limit") as caught:
            parse()
        assert caught.value.reason == REASON_TOO_MANY_PIXELS


def test_the_refusal_names_the_limit() -> None:
    with pytest.raises(WireError, match=str(MAX_FRAME_PIXELS)):
        check_jpeg(jpeg_bomb(8000, 6000))


def test_a_jpeg_whose_header_does_not_parse_is_not_a_jpeg() -> None:
    garbage = b"\xff\xd8\xff" + bytes(400) + b"\xff\xd9"
    with pytest.raises(WireError, match="malformed JPEG header") as caught:
        check_jpeg(garbage)
    assert caught.value.reason == REASON_NOT_JPEG
