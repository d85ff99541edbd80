"""Per-frame records (the viewer's VIEWER_LATENCY_LOG, the classic receivers' logs) -> figures."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from bench.results import Delivery, Latency
from shared.percentiles import percentile


@dataclass(frozen=True, slots=True)
class FrameRecord:
    camera: str
    seq: int
    captured_ns: int
    sent_ns: int
    received_ns: int
    ready_ns: int

    @property
    def latency_s(self) -> float:
        return (self.ready_ns - self.captured_ns) / 1e9


def read_records(path: Path, start_ns: int, end_ns: int, camera: str | None = None) -> list[FrameRecord]:
    """Records whose frame became ready inside [start_ns, end_ns] (optionally one camera's)."""
    if not path.exists():
        return []
    out = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                ready = int(row["ready_ns"])
            except (TypeError, ValueError):
                continue  # a line being written as we read
            row_camera = row.get("camera") or "cam0"  # the classic receivers log one camera
            if not start_ns <= ready <= end_ns or (camera and row_camera != camera):
                continue
            captured = int(row["captured_ns"])
            out.append(
                FrameRecord(
                    row_camera,
                    int(row["seq"]),
                    captured,
                    int(row.get("sent_ns") or captured),
                    int(row.get("received_ns") or captured),
                    ready,
                )
            )
    return out


def latency_summary(records: list[FrameRecord]) -> Latency:
    """Percentiles in ms, and the median share of each stage."""
    lat = [r.latency_s * 1000 for r in records]

    def ms(values: list[float], q: float) -> float | None:
        return _round(percentile(values, q))

    return Latency(
        p50_ms=ms(lat, 50),
        p95_ms=ms(lat, 95),
        p99_ms=ms(lat, 99),
        max_ms=ms(lat, 100),
        encode_ms=ms([(r.sent_ns - r.captured_ns) / 1e6 for r in records], 50),
        transport_ms=ms([(r.received_ns - r.sent_ns) / 1e6 for r in records], 50),
        render_ms=ms([(r.ready_ns - r.received_ns) / 1e6 for r in records], 50),
    )


def delivery(records: list[FrameRecord]) -> Delivery:
    """Per camera: frames shown vs sequence numbers spanned (gaps = frames lost on the way),
    and the source rate seen in capture timestamps."""
    by_camera: dict[str, list[FrameRecord]] = {}
    for r in records:
        by_camera.setdefault(r.camera, []).append(r)
    shown = spanned = 0
    rates = []
    for rows in by_camera.values():
        rows.sort(key=lambda r: r.seq)
        shown += len(rows)
        spanned += rows[-1].seq - rows[0].seq + 1
        span_s = (rows[-1].captured_ns - rows[0].captured_ns) / 1e9
        if len(rows) > 1 and span_s > 0:
            rates.append((rows[-1].seq - rows[0].seq) / span_s)
    return Delivery(
        shown=shown,
        spanned=spanned,
        gap_drop_fraction=1 - shown / spanned if spanned else 1.0,
        min_camera_source_fps=min(rates) if rates else 0.0,
    )


def fps_timeline(records: list[FrameRecord], start_ns: int, bin_s: float = 1.0) -> list[float]:
    """Frames made ready per second, in consecutive bins from ``start_ns``."""
    if not records:
        return []
    bins: dict[int, int] = {}
    for r in records:
        index = int((r.ready_ns - start_ns) / 1e9 / bin_s)
        bins[index] = bins.get(index, 0) + 1
    return [bins.get(i, 0) / bin_s for i in range(max(bins) + 1)]


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
