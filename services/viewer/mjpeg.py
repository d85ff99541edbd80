"""MJPEG (multipart/x-mixed-replace) framing.

Browsers paint a part only once they see what follows it, so each JPEG is followed at once
by the next boundary (not preceded by it), and each part carries its Content-Length.
"""

from __future__ import annotations

BOUNDARY = "framebusframe"
CONTENT_TYPE = f"multipart/x-mixed-replace; boundary={BOUNDARY}"
OPENING = f"--{BOUNDARY}\r\n".encode()


def part(jpeg: bytes) -> bytes:
    header = f"Content-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
    return header + jpeg + f"\r\n--{BOUNDARY}\r\n".encode()
