"""The up/down state of one transport link (Redis, the gateway), as every service reports it.

One place turns connects and failures into the readiness check, the
``framebus_transport_up`` gauge, ``framebus_transport_reconnects_total`` and exactly one log
line per state change (not one per failed frame or retry).
"""

from __future__ import annotations

import logging

from shared.health import CheckResult
from shared.metrics import TRANSPORT_RECONNECTS, TRANSPORT_UP


def describe_error(error: BaseException | str) -> str:
    """``ConnectionError: Error 111 …`` — the class name says what kind of failure it was."""
    if isinstance(error, str):
        return error
    return f"{type(error).__name__}: {error}".strip(": ")


class TransportLink:
    def __init__(self, transport: str, role: str, log: logging.Logger) -> None:
        self.transport = transport
        self.role = role  # "transport" (capture publishing) or "upstream" (viewer reading)
        self.connected = False
        self.last_error = "not connected yet"
        self._log = log
        self._ever_failed = False

    def readiness(self) -> CheckResult:
        return CheckResult(self.connected, "connected" if self.connected else self.last_error)

    def up(self) -> None:
        if self.connected:
            return
        if self._ever_failed:
            TRANSPORT_RECONNECTS.labels(self.transport).inc()
        self._log.info("%s %s connected", self.transport, self.role)
        self.connected = True
        TRANSPORT_UP.labels(self.transport).set(1)

    def down(self, error: BaseException | str, retry_in: float | None = None) -> None:
        text = describe_error(error)
        if self.connected or not self._ever_failed:
            retry = f"; retrying in {retry_in:.0f}s" if retry_in is not None else ""
            self._log.warning("%s %s lost (%s)%s", self.transport, self.role, text, retry)
        self.connected = False
        self._ever_failed = True
        self.last_error = text
        TRANSPORT_UP.labels(self.transport).set(0)
