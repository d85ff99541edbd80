"""MJPEG (multipart/x-mixed-replace) framing, and HTTP/1.1 chunk framing around it.

Each JPEG is followed at once by the next boundary (not preceded by it), so a reader knows a
part is complete without waiting for the next frame; plain parts carry a Content-Length.
"""

from __future__ import annotations

import functools

BOUNDARY = "framebusframe"
CONTENT_TYPE = f"multipart/x-mixed-replace; boundary={BOUNDARY}"
OPENING = f"--{BOUNDARY}\r\n".encode()


# Every stream of a camera frames the same JPEG: build each part once, not once per browser
# (a 50-600 KiB copy per client per frame otherwise). Bytes cache their hash, so a hit is cheap.
@functools.lru_cache(maxsize=32)
def part(jpeg: bytes) -> bytes:
    header = f"Content-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
    return header + jpeg + f"\r\n--{BOUNDARY}\r\n".encode()


# Chromium finishes a part only once it has read the *next* part's whole header block, not at
# the boundary, so the framing above paints every frame one frame late (and a lone "no signal"
# card never). ``?framing=browser`` streams send that header block right after each JPEG; the
# price is that their parts cannot carry a Content-Length (the next JPEG's size is not known yet).
BROWSER_PART_HEADERS = b"Content-Type: image/jpeg\r\n\r\n"
BROWSER_OPENING = OPENING + BROWSER_PART_HEADERS


@functools.lru_cache(maxsize=32)
def browser_part(jpeg: bytes) -> bytes:
    return jpeg + f"\r\n--{BOUNDARY}\r\n".encode() + BROWSER_PART_HEADERS


@functools.lru_cache(maxsize=32)
def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk (RFC 9112 section 7.1) holding ``data``."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"
