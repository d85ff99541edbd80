"""Start-up shared by the services: settings or a one-line error, logging, uvloop, run."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TypeVar

import uvloop
from aiohttp import web
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from shared.logs import configure_logging
from shared.settings import CommonSettings, describe_settings_error

S = TypeVar("S", bound=BaseSettings)

# Compose kills a container 10 s after SIGTERM and our target is 2 s, so handlers that are
# still running one second after shutdown starts are cancelled.
SHUTDOWN_TIMEOUT_SECONDS = 1.0


def load_settings(settings_cls: type[S], service: str) -> S:
    try:
        return settings_cls()
    except ValidationError as exc:
        print(f"{service}: {describe_settings_error(exc, settings_cls)}", file=sys.stderr)
        raise SystemExit(2) from None


def run_http_service(
    service: str,
    settings: CommonSettings,
    port: int,
    make_app: Callable[[], web.Application],
) -> None:
    configure_logging(settings.log_level, settings.log_format, service)
    log = logging.getLogger(f"framebus.{service}")
    log.info("listening on http://%s:%d", settings.bind_host, port)
    try:
        web.run_app(
            make_app(),
            host=settings.bind_host,
            port=port,
            shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,
            handle_signals=True,
            handler_cancellation=True,
            print=None,
            access_log=None,
            loop=uvloop.new_event_loop(),
        )
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", settings.bind_host, port, exc)
        raise SystemExit(1) from None
    log.info("stopped")
