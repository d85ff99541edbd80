"""Logging set-up: text or JSON lines, secrets redacted, rate-limited warnings."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
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


Clock = Callable[[], float]

# Distinct fold keys a RateLimitedLog keeps; beyond this, new keys share one "other" window,
# so a caller passing unbounded keys (say, camera ids) cannot grow it without end.
MAX_FOLD_KEYS = 64
OTHER_KEY = "(other messages)"


@dataclass
class _Fold:
    last: float
    folded: int = 0


class RateLimitedLog:
    """Logs each kind of warning at most once per interval and says what it folded.

    A kind is the message template, or an explicit ``key`` (e.g. a rejection reason) when one
    template carries several kinds. The next line of a kind says how many lines *of that kind*
    were folded since the last one; a kind that goes quiet is summed up by a separate line as
    soon as any later warning is logged, so folded events are never attributed to another.
    """

    def __init__(self, logger: logging.Logger, interval: float = 10.0, clock: Clock = time.monotonic) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._folds: dict[str, _Fold] = {}

    def warning(self, msg: str, *args: object, key: str | None = None) -> None:
        now = self._clock()
        kind = key if key is not None else msg
        if kind not in self._folds and len(self._folds) >= MAX_FOLD_KEYS:
            kind = OTHER_KEY
        self._summarise_quiet_kinds(now, except_kind=kind)
        fold = self._folds.get(kind)
        if fold is not None and now - fold.last < self._interval:
            fold.folded += 1
            return
        suffix = ""
        if fold is not None and fold.folded:
            suffix = f" ({fold.folded} more {kind!r} folded since the last such line)"
            if args:  # the suffix may quote a template: keep its % signs out of the formatting
                suffix = suffix.replace("%", "%%")
        self._logger.warning(msg + suffix, *args)
        self._folds[kind] = _Fold(now)

    def _summarise_quiet_kinds(self, now: float, except_kind: str) -> None:
        for kind, fold in list(self._folds.items()):
            if kind == except_kind or now - fold.last < self._interval:
                continue
            if fold.folded:
                self._logger.warning(
                    "%d more %r folded in the %.0fs after the last such line",
                    fold.folded,
                    kind,
                    self._interval,
                )
            del self._folds[kind]


class ChurnLog:
    """Join/leave lines for clients, bounded: each event is logged while there are at most
    ``burst`` in the current ``interval``; past that, events are counted and one summary line
    per interval says how many joins and leaves were folded (500 connects in a second write
    ``burst`` + 1 lines, not 500)."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str = "client",
        burst: int = 10,
        interval: float = 1.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._logger = logger
        self._what = what
        self._burst = burst
        self._interval = interval
        self._clock = clock
        self._window_start = float("-inf")
        self._logged = 0
        self._folded: dict[str, int] = {"join": 0, "leave": 0}
        self._flush_timer: asyncio.TimerHandle | None = None

    def joined(self, msg: str, *args: object) -> None:
        self._event("join", msg, args)

    def left(self, msg: str, *args: object) -> None:
        self._event("leave", msg, args)

    def _event(self, kind: str, msg: str, args: tuple[object, ...]) -> None:
        now = self._clock()
        if now - self._window_start >= self._interval:
            self.flush()
            self._window_start, self._logged = now, 0
        if self._logged < self._burst:
            self._logged += 1
            self._logger.info(msg, *args)
            return
        self._folded[kind] += 1
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        # The summary must appear even if no further event comes to trigger it.
        if self._flush_timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a unit test, a thread): the next event or flush() reports it
        self._flush_timer = loop.call_later(self._interval, self.flush)

    def flush(self) -> None:
        """Log the summary of folded events now, if there are any."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        joins, leaves = self._folded["join"], self._folded["leave"]
        if joins or leaves:
            self._logger.info(
                "%s churn: %d joins and %d leaves not logged one by one (over %d lines per %.0fs)",
                self._what,
                joins,
                leaves,
                self._burst,
                self._interval,
            )
        self._folded = {"join": 0, "leave": 0}
