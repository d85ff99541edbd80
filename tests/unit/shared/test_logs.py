"""Logs: secrets redacted (tracebacks too), JSON lines, repeated warnings folded."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from shared.logs import JsonFormatter, RateLimitedLog, TextFormatter, redact


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
