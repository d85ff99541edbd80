"""MJPEG framing, live stats, settings errors, log redaction."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from pydantic import ValidationError

from services.capture.settings import CaptureSettings
from services.capture.sources import parse_source
from services.viewer import mjpeg
from services.viewer.settings import ViewerSettings
from services.viewer.stats import RollingStats
from shared.logs import JsonFormatter, RateLimitedLog, TextFormatter, redact
from shared.settings import describe_settings_error, env_names


def test_mjpeg_part_carries_its_length_and_is_followed_by_the_boundary() -> None:
    part = mjpeg.part(b"JPEGDATA")
    assert part.startswith(b"Content-Type: image/jpeg\r\nContent-Length: 8\r\n\r\nJPEGDATA")
    assert part.endswith(b"\r\n--" + mjpeg.BOUNDARY.encode() + b"\r\n")
    assert f"multipart/x-mixed-replace; boundary={mjpeg.BOUNDARY}" == mjpeg.CONTENT_TYPE


def test_stats_report_rate_and_percentiles_and_decay_when_frames_stop() -> None:
    stats = RollingStats(window=5.0)
    for i in range(150):
        stats.record(0.010 + (0.090 if i == 149 else 0.0), now=i / 30)
    assert stats.fps(now=149 / 30) == pytest.approx(30, rel=0.05)
    assert stats.percentile(50) == pytest.approx(0.010)
    assert stats.percentile(100) == pytest.approx(0.100)
    assert stats.fps(now=149 / 30 + 10) == 0.0


def test_settings_error_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JPEG_QUALITY", "101")
    with pytest.raises(ValidationError) as caught:
        CaptureSettings()
    line = describe_settings_error(caught.value, CaptureSettings)
    assert line.startswith("invalid setting JPEG_QUALITY:")
    assert "\n" not in line


def test_service_override_wins_over_shared_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSPORT", "http")
    monkeypatch.setenv("VIEWER_TRANSPORT", "redis")
    assert ViewerSettings().transport == "redis"
    assert CaptureSettings().transport == "http"
    assert {"TRANSPORT", "CAPTURE_TRANSPORT", "CAPTURE_SOURCE", "REDIS_URL"} <= env_names(CaptureSettings)


@pytest.mark.parametrize(
    ("value", "kind"),
    [("synthetic", "synthetic"), ("0", "device"), ("rtsp://cam/x", "url"), ("/videos/a.mp4", "file")],
)
def test_capture_source_kinds(value: str, kind: str) -> None:
    assert parse_source(value).kind == kind


def test_redaction_hides_url_passwords_and_bearer_tokens() -> None:
    text = redact("connect rediss://user:s3cret@redis:6380/0 failed; Authorization: Bearer abc.def")
    assert "s3cret" not in text and "abc.def" not in text
    assert "rediss://user:***@redis:6380/0" in text


def test_json_log_lines_are_json() -> None:
    record = logging.LogRecord("framebus", logging.INFO, __file__, 1, "source opened: %s", ("url",), None)
    assert json.loads(JsonFormatter().format(record))["msg"] == "source opened: url"


def test_rate_limited_log_folds_repeats(caplog: pytest.LogCaptureFixture) -> None:
    limited = RateLimitedLog(logging.getLogger("framebus.test"), interval=60)
    with caplog.at_level(logging.WARNING):
        for _ in range(100):
            limited.warning("dropping frames")
    assert len(caplog.records) == 1


def test_text_log_lines_redact_secrets_in_tracebacks_too() -> None:
    try:
        raise ConnectionError("cannot reach redis://:hunter2@db:6379/0")
    except ConnectionError:
        record = logging.LogRecord("framebus", logging.ERROR, __file__, 1, "lost", None, sys.exc_info())
    line = TextFormatter("%(message)s").format(record)
    assert "hunter2" not in line and "redis://:***@db:6379/0" in line
