"""Logging set-up: text or JSON lines, secrets redacted, rate-limited warnings."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/\s]*):(?P<secret>[^@/\s]+)@")
_BEARER = re.compile(r"(Bearer\s+)\S+", re.IGNORECASE)


def redact(text: str) -> str:
    """Hide passwords in URLs and bearer tokens, wherever they appear in a message."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    return _BEARER.sub(r"\1***", text)


class TextFormatter(logging.Formatter):
    """The usual text line; the whole of it is redacted, traceback included."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry)


def configure_logging(level: str, fmt: str, service: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log would be a line per request, and the MJPEG stream is one long request anyway.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


class RateLimitedLog:
    """Logs at most one warning per interval, with the number of events it folded in."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0) -> None:
        self._logger = logger
        self._interval = interval
        self._last = float("-inf")
        self._suppressed = 0

    def warning(self, msg: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last < self._interval:
            self._suppressed += 1
            return
        suffix = (
            f" ({self._suppressed} similar in the last {self._interval:.0f}s)" if self._suppressed else ""
        )
        self._logger.warning(msg + suffix, *args)
        self._last = now
        self._suppressed = 0
