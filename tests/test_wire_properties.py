"""Property tests of the wire format (shared/wire.py) and of the JPEG check.

Two properties per encoding: valid metadata survives a round trip unchanged, and arbitrary
input is either parsed or refused with WireError -- never any other exception, because the
services catch WireError alone and anything else would crash a handler or a follower task.
"""

from __future__ import annotations

import contextlib
import json
import struct

from hypothesis import given, settings, strategies as st

from shared.wire import (
    MAX_PLAUSIBLE_NS,
    META_FIELDS,
    MIN_JPEG_BYTES,
    MIN_PLAUSIBLE_NS,
    FrameMeta,
    WireError,
    check_jpeg,
    from_headers,
    from_stream_fields,
    to_headers,
    to_stream_fields,
)
from shared.wire_ws import from_ws_message, to_ws_message
from tests.fixtures.bombs import small_jpeg, with_claimed_size

INT64 = 2**63 - 1
SOI, EOI = b"\xff\xd8\xff", b"\xff\xd9"

camera_ids = st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z")
timestamps = st.integers(MIN_PLAUSIBLE_NS, MAX_PLAUSIBLE_NS)
# Sides up to 4096: any such frame is within the pixel limits of shared/jpeg.py.
metas = st.builds(
    FrameMeta,
    camera=camera_ids,
    seq=st.integers(0, INT64),
    captured_ns=timestamps,
    sent_ns=timestamps,
    width=st.integers(1, 4096),
    height=st.integers(1, 4096),
)
SMALL_JPEG = small_jpeg()


def jpeg_for(meta: FrameMeta) -> bytes:
    """A real JPEG whose header says the meta's size (the wire checks the two agree)."""
    return with_claimed_size(SMALL_JPEG, meta.width, meta.height)


# Shaped like a JPEG as far as the SOI/EOI check looks: SOI, anything, EOI.
jpegs = st.binary(min_size=MIN_JPEG_BYTES, max_size=400).map(lambda body: SOI + body + EOI)

# Values that look almost right: digits in other scripts, signs, spaces, huge numbers.
tricky_text = st.one_of(
    st.text(max_size=24),
    st.sampled_from(["", "-1", "+1", " 1", "1 ", "1e3", "0x10", "²", "٣", "1_000", "9" * 20]),
    st.integers(-(2**70), 2**70).map(str),
)
tricky_values = st.one_of(st.binary(max_size=24), tricky_text.map(lambda t: t.encode("utf-8")))


def _as_redis_returns(fields: dict[str, bytes | int | str]) -> dict[bytes, bytes]:
    """What XREAD hands back for an XADD of these fields: bytes keys, bytes values."""
    return {
        key.encode(): value if isinstance(value, bytes) else str(value).encode()
        for key, value in fields.items()
    }


@given(metas)
def test_stream_fields_round_trip_valid_frames(meta: FrameMeta) -> None:
    jpeg = jpeg_for(meta)
    assert from_stream_fields(_as_redis_returns(to_stream_fields(meta, jpeg))) == (meta, jpeg)


@given(metas)
def test_headers_round_trip_valid_metadata(meta: FrameMeta) -> None:
    assert from_headers(meta.camera, to_headers(meta)) == meta


@given(metas)
def test_ws_message_round_trip_valid_frames(meta: FrameMeta) -> None:
    jpeg = jpeg_for(meta)
    assert from_ws_message(to_ws_message(meta, jpeg)) == (meta, jpeg)


@given(st.dictionaries(st.sampled_from([*(f.encode() for f in META_FIELDS), b"jpeg", b"x"]), tricky_values))
def test_stream_fields_refuse_anything_invalid_with_wire_error_only(fields: dict[bytes, bytes]) -> None:
    with contextlib.suppress(WireError):
        from_stream_fields(fields)


@given(metas, st.sampled_from(META_FIELDS), tricky_values)
def test_stream_fields_with_one_bad_value_parse_or_raise_wire_error(
    meta: FrameMeta, name: str, value: bytes
) -> None:
    fields = _as_redis_returns(to_stream_fields(meta, jpeg_for(meta)))
    fields[name.encode()] = value
    try:
        parsed, _ = from_stream_fields(fields)
    except WireError:
        return
    # Accepted only if the value really was a valid one for that field.
    assert str(getattr(parsed, name)).encode() == value


@given(
    metas,
    st.sampled_from(["X-Frame-Seq", "X-Frame-Captured-Ns", "X-Frame-Sent-Ns", "X-Frame-Width"]),
    tricky_text,
)
def test_headers_with_one_bad_value_parse_or_raise_wire_error(
    meta: FrameMeta, header: str, value: str
) -> None:
    headers = {**to_headers(meta), header: value}
    try:
        from_headers(meta.camera, headers)
    except WireError:
        return
    assert value.isascii() and value.isdigit(), f"accepted {value!r} for {header}"


@given(st.binary(max_size=600))
def test_ws_message_refuses_arbitrary_bytes_with_wire_error_only(message: bytes) -> None:
    with contextlib.suppress(WireError):
        from_ws_message(message)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@given(st.dictionaries(st.sampled_from([*META_FIELDS, "other"]), json_values), jpegs)
def test_ws_message_with_any_json_header_parses_or_raises_wire_error(
    header: dict[str, object], jpeg: bytes
) -> None:
    raw = json.dumps(header).encode()
    with contextlib.suppress(WireError):
        from_ws_message(struct.pack(">I", len(raw)) + raw + jpeg)


@settings(max_examples=20)
@given(st.integers(1000, 4000), st.sampled_from([b"[", b'{"a":']))
def test_ws_message_with_deeply_nested_json_header_is_a_wire_error(depth: int, opener: bytes) -> None:
    # A hostile gateway could send this; Python's JSON parser raises RecursionError on it.
    raw = opener * depth
    with contextlib.suppress(WireError):
        from_ws_message(struct.pack(">I", len(raw)) + raw + SOI + b"\0" * 100 + EOI)


@given(st.binary(max_size=300))
def test_check_jpeg_refuses_anything_without_the_soi_to_eoi_shape(data: bytes) -> None:
    shaped = len(data) >= MIN_JPEG_BYTES and data[:3] == SOI and EOI in data[-16:]
    try:
        check_jpeg(data)
    except WireError:
        return
    assert shaped, "accepted bytes without SOI ... EOI"


@given(jpegs, st.integers(1, 200))
def test_check_jpeg_refuses_a_jpeg_cut_short(jpeg: bytes, cut: int) -> None:
    truncated = jpeg[: max(0, len(jpeg) - 16 - cut)]
    if EOI in truncated[-16:]:
        return  # the random body happened to contain an EOI marker right there
    try:
        check_jpeg(truncated)
    except WireError:
        return
    raise AssertionError("a JPEG without its end marker was accepted")
