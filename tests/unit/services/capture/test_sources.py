"""CAPTURE_SOURCE: what kind of source a value names."""

from __future__ import annotations

import pytest

from services.capture.sources import parse_source


@pytest.mark.parametrize(
    ("value", "kind"),
    [("synthetic", "synthetic"), ("0", "device"), ("rtsp://cam/x", "url"), ("/videos/a.mp4", "file")],
)
def test_capture_source_kinds(value: str, kind: str) -> None:
    assert parse_source(value).kind == kind
