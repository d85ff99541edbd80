"""bench/rtsp.py's figures and verdicts, without a camera (the case itself needs GStreamer)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from bench import rtsp
from bench.procs import Proc, Sample, Scrape, wait_for
from bench.results import Delivery, Floor, FramebusResult, Latency, RtspResult, RtspTransport
from bench.rtsp import (
    CameraStack,
    camera_cores,
    delivered_of_read,
    read_wait_ms,
    rtsp_rows,
    rtsp_verdicts,
)
from bench.stack import Stack
from bench.verdicts import Verdicts
from services.capture.sources import FrameSource
from shared.image import NDArray


def floor_1080p() -> Floor:
    # encode 7 ms + render 8 ms: a 15 ms floor.
    return Floor(
        encode_s=0.007,
        decode_s=0.006,
        resize_s=0.001,
        reencode_s=0.001,
        render_s=0.008,
        latency_floor_s=0.015,
        max_fps_floor=125.0,
        jpeg_bytes=250_000,
    )


def framebus(p50: float, total_cpu: float, source_fps: float = 30.0) -> FramebusResult:
    return FramebusResult(
        case="rtsp-redis-1080p-camera",
        transport="redis",
        size="1080p",
        mode="camera",
        fps=30.0,
        latency=Latency(
            p50_ms=p50, p95_ms=p50, p99_ms=p50, max_ms=p50, encode_ms=7, transport_ms=0.5, render_ms=8
        ),
        cpu_ms_per_frame={"capture": 11.0, "redis-server": 0.4, "viewer": 8.6, "total": total_cpu},
        cpu_cores_busy=0.6,
        peak_rss_mib={"capture": 120.0, "viewer": 100.0},
        fps_timeline=[30.0],
        latency_ms_samples=[p50],
        seconds=8.0,
        source_fps=source_fps,
        delivered_fraction=1.0,
        delivery=Delivery(shown=240, spanned=240, gap_drop_fraction=0.0, min_camera_source_fps=30),
        bytes_per_frame=260_000,
        drops={},
        api_stats={},
    )


def result(delivered: float | None, p50: float, total_cpu: float, floor: Floor | None) -> RtspResult:
    transport = RtspTransport(
        framebus=framebus(p50, total_cpu),
        delivered_of_read=delivered,
        pre_sequence_drops=0.0,
        camera_cpu_cores=0.6,
        read_wait_ms=33.3,
    )
    return RtspResult(
        width=1920,
        height=1080,
        nominal_fps=30,
        pattern="snow",
        source_decode_ms=5.0,
        probe_fps=30.0,
        floor=floor,
        transports=[transport],
        seconds=20.0,
    )


def verdict(lines: list[str], label: str) -> list[str]:
    (found,) = [text for text in lines if label in text]
    return found.split()[-4:]


def test_frames_dropped_before_numbering_count_against_delivery() -> None:
    drops = {
        "capture:capture/fps_cap": 20.0,  # before the sequence number: no gap shows them
        "capture:encode/superseded": 4.0,
        "capture:redis/superseded": 7.0,  # after it: already a gap in the viewer's log
        "viewer:render/superseded": 3.0,
    }
    assert delivered_of_read(0.99, 240.0, drops) == (round(0.99 * (1 - 24 / 240), 4), 24.0)
    assert delivered_of_read(1.0, 240.0, {}) == (1.0, 0.0)
    assert delivered_of_read(1.0, 0.0, drops) == (None, 24.0)


def test_the_targets_of_the_issue() -> None:
    out = Verdicts()
    # 18 ms against a 15 ms floor: 1.2 <= 1.3; CPU 21 ms against 15 + 5 ms: 1.05 <= 1.15.
    rtsp_verdicts(result(0.995, p50=18.0, total_cpu=21.0, floor=floor_1080p()), out)
    assert verdict(out.lines, "delivered (shown / read") == ["target", ">=", "0.99", "MET"]
    assert verdict(out.lines, "source fps read") == ["target", ">=", "0.98", "MET"]
    assert verdict(out.lines, "p50 / codec floor") == ["target", "<=", "1.3", "MET"]
    assert verdict(out.lines, "CPU/frame vs floor + decode") == ["target", "<=", "1.15", "MET"]
    assert verdict(out.lines, "JPEG bytes / floor clip's")[-1] == "n/a"  # a figure, not a target


def test_missed_targets_and_a_missing_floor() -> None:
    out = Verdicts()
    rtsp_verdicts(result(0.9, p50=30.0, total_cpu=30.0, floor=floor_1080p()), out)
    assert verdict(out.lines, "delivered (shown / read")[-1] == "MISSED"
    assert verdict(out.lines, "p50 / codec floor")[-1] == "MISSED"  # 2.0 > 1.3
    assert verdict(out.lines, "CPU/frame vs floor + decode")[-1] == "MISSED"  # 1.5 > 1.15
    without = Verdicts()
    rtsp_verdicts(result(None, p50=18.0, total_cpu=21.0, floor=None), without)
    assert verdict(without.lines, "p50 / codec floor")[-1] == "n/a"
    assert verdict(without.lines, "delivered (shown / read")[-1] == "n/a"


def test_rows_say_what_latency_covers_and_the_result_is_json() -> None:
    measured = result(1.0, p50=18.0, total_cpu=21.0, floor=floor_1080p())
    rows = "\n".join(rtsp_rows(measured))
    assert "VideoCapture.read returned" in rows and "not counted as framebus's" in rows
    assert "rtsp-redis-1080p-camera" in rows and "camera 0.60 cores" in rows
    saved = json.loads(json.dumps(dataclasses.asdict(measured)))
    assert saved["transports"][0]["framebus"]["latency"]["p50_ms"] == 18.0
    assert saved["floor"]["latency_floor_s"] == 0.015 and saved["source_decode_ms"] == 5.0


def test_camera_cpu_is_read_over_the_first_to_the_last_scrape() -> None:
    assert camera_cores([(10.0, 1.0), (11.0, 1.1), (12.0, 2.0)]) == 0.5
    assert camera_cores([(10.0, 1.0)]) is None


def _histogram(total: float, count: float) -> list[Sample]:
    return [
        ("framebus_stage_seconds_sum", {"stage": "read"}, total),
        ("framebus_stage_seconds_count", {"stage": "read"}, count),
        ("framebus_stage_seconds_sum", {"stage": "encode"}, 99.0),
    ]


def test_read_wait_is_the_mean_read_stage_between_scrapes() -> None:
    before: Scrape = {"capture": _histogram(1.0, 30)}
    after: Scrape = {"capture": _histogram(1.0 + 8 * 0.0333, 30 + 8 * 30)}
    assert read_wait_ms(before, after) == pytest.approx(33.3 / 30, abs=0.01)
    assert read_wait_ms(before, before) is None


class FakeCamera:
    def __init__(self) -> None:
        self.cpu = 0.0

    def check(self) -> bool:
        return True

    def cpu_seconds(self) -> float:
        self.cpu += 0.5
        return self.cpu


def test_the_camera_stack_reads_the_camera_at_each_scrape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Stack, "scrape", lambda self: {"capture": []})
    stack = CameraStack.__new__(CameraStack)  # no processes: only the scrape hook is under test
    stack.camera = FakeCamera()  # type: ignore[assignment]
    stack.camera_reads, stack.scrapes = [], []
    assert stack.scrape() == {"capture": []}
    stack.scrape()
    assert [cpu for _, cpu in stack.camera_reads] == [0.5, 1.0]
    assert len(stack.scrapes) == 2


class EndingSource(FrameSource):
    def __init__(self, frames: int) -> None:
        self.left = frames

    def read(self) -> NDArray | None:
        self.left -= 1
        return np.zeros((2, 2, 3), np.uint8) if self.left >= 0 else None


def test_a_stream_that_ends_while_probing_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="ended"):
        rtsp._read_for(EndingSource(3), 5.0)


def test_the_camera_is_listening_once_its_port_is_logged(tmp_path: Path) -> None:
    camera = Proc("camera", ["sh", "-c", "echo 4242; sleep 30"], {}, tmp_path)
    try:
        wait_for(lambda: rtsp._listening(camera, 4242), 10, "port line")
        assert not rtsp._listening(camera, 4243)
    finally:
        camera.stop()
