"""VIEWER_LATENCY_LOG: per-frame timestamps as CSV lines, for `make bench`; bounded."""

from __future__ import annotations

from services.viewer.render import RenderTimings
from shared.wire import FrameMeta

# A benchmark tool: stop appending after this many lines (~20 MB).
LATENCY_LOG_MAX_LINES = 250_000
LATENCY_LOG_COLUMNS = "camera,seq,captured_ns,sent_ns,received_ns,ready_ns,decode_s,resize_s,reencode_s"


class LatencyLog:
    def __init__(self, path: str) -> None:
        # Line-buffered: a reader sees whole lines while the viewer runs; one small write per frame.
        self._file = open(path, "a", buffering=1)  # noqa: SIM115 - open for the viewer's life
        self._lines = 0
        if self._file.tell() == 0:
            self._file.write(LATENCY_LOG_COLUMNS + "\n")

    def write(self, camera: str, meta: FrameMeta, received_ns: int, ready_ns: int, t: RenderTimings) -> None:
        if self._lines >= LATENCY_LOG_MAX_LINES:
            return
        self._lines += 1
        self._file.write(
            f"{camera},{meta.seq},{meta.captured_ns},{meta.sent_ns},{received_ns},{ready_ns},"
            f"{t.decode:.6f},{t.resize:.6f},{t.encode:.6f}\n"
        )

    def close(self) -> None:
        self._file.close()
