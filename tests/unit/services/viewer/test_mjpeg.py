"""MJPEG framing: each part carries its length and is followed by the boundary."""

from __future__ import annotations

from services.viewer import mjpeg


def test_mjpeg_part_carries_its_length_and_is_followed_by_the_boundary() -> None:
    part = mjpeg.part(b"JPEGDATA")
    assert part.startswith(b"Content-Type: image/jpeg\r\nContent-Length: 8\r\n\r\nJPEGDATA")
    assert part.endswith(b"\r\n--" + mjpeg.BOUNDARY.encode() + b"\r\n")
    assert f"multipart/x-mixed-replace; boundary={mjpeg.BOUNDARY}" == mjpeg.CONTENT_TYPE
