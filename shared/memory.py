"""Keep glibc from returning frame-sized buffers to the kernel after every frame.

A 720p frame is 2.7 MB; glibc serves blocks that large with mmap and unmaps them on free, so
each decode/read re-faults fresh pages. Measured here: cv2.imdecode in a loop ran about 2x
slower for that alone. Raising the mmap and trim thresholds keeps the pages in the heap.
Setting MALLOC_MMAP_THRESHOLD_ in the environment does the same, but only before start-up.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
FRAME_BUFFER_THRESHOLD = 64 * 1024 * 1024

log = logging.getLogger("framebus.memory")


def keep_frame_buffers_mapped() -> bool:
    """Returns False (and changes nothing) where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        log.debug("mallopt not available; frame buffers use the allocator's defaults")
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, FRAME_BUFFER_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, FRAME_BUFFER_THRESHOLD * 2)
    )
