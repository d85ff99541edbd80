"""Start-up shared by the services: settings or a one-line error, logging, uvloop, run.

Also the guard against slow-header clients (slowloris), which aiohttp does not have: a
connection must complete its first request's headers within HEADER_TIMEOUT_SECONDS, and at
most MAX_HALF_OPEN_CONNECTIONS connections may be waiting for theirs at once (past that the
oldest waiting one is closed, so a flood of idle sockets cannot lock real clients out). Later
requests on a kept-alive connection are bounded by KEEPALIVE_TIMEOUT_SECONDS (aiohttp closes
a connection that has not completed its next request by then).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from contextlib import suppress
from typing import Any, TypeVar

import uvloop
from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler
from prometheus_client import Counter
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from shared.logs import RateLimitedLog, configure_logging
from shared.settings import CommonSettings, describe_settings_error

S = TypeVar("S", bound=BaseSettings)

# Compose kills a container 10 s after SIGTERM and our target is 2 s, so handlers that are
# still running one second after shutdown starts are cancelled.
SHUTDOWN_TIMEOUT_SECONDS = 1.0
# A client on any network sends a request's headers in well under a second; 10 s is
# generous for a slow mobile link and short enough that idle sockets cannot pile up.
HEADER_TIMEOUT_SECONDS = 10.0
# Connections accepted whose first request's headers are not complete yet (half-open).
MAX_HALF_OPEN_CONNECTIONS = 64
# Idle time allowed on a kept-alive connection before its next request has arrived in full
# (aiohttp's keepalive_timeout, which also runs while the next request's headers trickle in).
# Longer than aiohttp's client-side default (15 s), so a client reusing an idle connection is
# not racing the server closing it (capture's HTTP sink would count a transport_error).
KEEPALIVE_TIMEOUT_SECONDS = 20.0

CONNECTIONS_CLOSED = Counter(
    "framebus_http_connections_closed_total",
    "Connections the server closed before their first request arrived in full.",
    ["reason"],
)

log = logging.getLogger("framebus.http")


def load_settings(settings_cls: type[S], service: str) -> S:
    try:
        return settings_cls()
    except ValidationError as exc:
        print(f"{service}: {describe_settings_error(exc, settings_cls)}", file=sys.stderr)
        raise SystemExit(2) from None


class HalfOpenGuard:
    """Closes connections that do not complete their first request's headers in time, and
    bounds how many may be waiting at once.

    aiohttp has no header timeout and no hook per connection, but its ``web.Server`` calls
    ``connection_made``/``connection_lost`` for every connection and ``request_factory`` when a
    request's headers have been parsed; the guard wraps those three on the server instance.
    """

    def __init__(
        self,
        server: web.Server,
        header_timeout: float = HEADER_TIMEOUT_SECONDS,
        max_half_open: int = MAX_HALF_OPEN_CONNECTIONS,
    ) -> None:
        self._header_timeout = header_timeout
        self._max_half_open = max_half_open
        # Insertion-ordered: the first entry is the oldest connection still waiting.
        self._waiting: dict[RequestHandler, asyncio.TimerHandle] = {}
        self._log = RateLimitedLog(log)
        self._server_made = server.connection_made
        self._server_lost = server.connection_lost
        self._server_factory = server.request_factory
        server.connection_made = self._connection_made  # type: ignore[method-assign]
        server.connection_lost = self._connection_lost  # type: ignore[method-assign]
        server.request_factory = self._request_factory

    @property
    def half_open(self) -> int:
        return len(self._waiting)

    def _connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        self._server_made(handler, transport)
        if len(self._waiting) >= self._max_half_open:
            oldest = next(iter(self._waiting))
            self._close(oldest, "half_open_limit")
        loop = asyncio.get_running_loop()
        self._waiting[handler] = loop.call_later(self._header_timeout, self._close, handler, "header_timeout")

    def _connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        self._forget(handler)
        self._server_lost(handler, exc)

    def _request_factory(
        self,
        message: RawRequestMessage,
        payload: StreamReader,
        protocol: RequestHandler,
        writer: AbstractStreamWriter,
        task: asyncio.Task[None],
    ) -> web.BaseRequest:
        self._forget(protocol)  # headers complete: from now on the handlers' own timeouts apply
        return self._server_factory(message, payload, protocol, writer, task)

    def _forget(self, handler: RequestHandler) -> None:
        timer = self._waiting.pop(handler, None)
        if timer is not None:
            timer.cancel()

    def _close(self, handler: RequestHandler, reason: str) -> None:
        self._forget(handler)
        CONNECTIONS_CLOSED.labels(reason).inc()
        limit = (
            f"headers not complete within {self._header_timeout:g}s"
            if reason == "header_timeout"
            else f"more than {self._max_half_open} connections waiting for their headers; closed the oldest"
        )
        self._log.warning("closed a connection from %s: %s", _peer(handler), limit, key=reason)
        handler.force_close()  # closes the transport; connection_lost follows


def _peer(handler: RequestHandler) -> str:
    peer = handler.transport.get_extra_info("peername") if handler.transport else None
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else "?"


async def serve(app: web.Application, host: str, port: int, **runner_args: Any) -> None:
    """Serve ``app`` until SIGTERM/SIGINT (the runner raises GracefulExit), then clean up.

    What ``web.run_app`` does, plus the HalfOpenGuard, which needs the server between the
    runner's set-up and the site's start (run_app offers no such moment).
    """
    runner = web.AppRunner(
        app,
        handle_signals=True,
        shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,
        handler_cancellation=True,
        access_log=None,
        keepalive_timeout=KEEPALIVE_TIMEOUT_SECONDS,
        **runner_args,
    )
    await runner.setup()
    try:
        assert runner.server is not None
        HalfOpenGuard(runner.server)
        await web.TCPSite(runner, host, port).start()
        await asyncio.Event().wait()  # forever: shutdown comes as GracefulExit or cancellation
    finally:
        await runner.cleanup()


def run_http_service(
    service: str,
    settings: CommonSettings,
    port: int,
    make_app: Callable[[], web.Application],
) -> None:
    configure_logging(settings.log_level, settings.log_format, service)
    log = logging.getLogger(f"framebus.{service}")
    log.info("listening on http://%s:%d", settings.bind_host, port)
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    main = loop.create_task(serve(make_app(), settings.bind_host, port))
    try:
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", settings.bind_host, port, exc)
        raise SystemExit(1) from None
    finally:
        _close_loop(loop, main)
    log.info("stopped")


def _close_loop(loop: asyncio.AbstractEventLoop, main: asyncio.Task[None]) -> None:
    """As web.run_app ends: finish the main task, cancel whatever is left, close the loop."""
    if not main.done():
        main.cancel()
        with suppress(asyncio.CancelledError, web.GracefulExit):
            loop.run_until_complete(main)
    leftover = asyncio.all_tasks(loop)
    for task in leftover:
        task.cancel()
    if leftover:
        loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
