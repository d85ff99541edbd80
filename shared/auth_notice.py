"""Keeping tokens out of logs, and saying at start what a service protects (or that it does not)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from ipaddress import ip_address

from aiohttp import web

from shared.auth import AccessPolicy, access_middleware
from shared.settings import CommonSettings
from shared.tokens import EXAMPLE_SECRETS

log = logging.getLogger("framebus.auth")


# --- keeping tokens out of logs ---------------------------------------------------------------

_QUERY_TOKEN = re.compile(r"([?&;](?:token|access_token)=)[^&\s\"'#;]+", re.IGNORECASE)
# A JWT anywhere (header.payload.signature, both JSON parts start with "{" -> "eyJ").
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{8,}")


def redact_tokens(text: str) -> str:
    """Hide ``token=`` query values and anything shaped like a JWT."""
    return _JWT.sub("***", _QUERY_TOKEN.sub(r"\1***", text))


class TokenRedactingFilter(logging.Filter):
    """Rewrites a record's message with tokens hidden. aiohttp's access log writes the request
    line with its query string, and its error log the URL, before our formatters see them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_tokens(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


# A logger's filters see only records logged on that very logger, so aiohttp's own loggers get
# one each, and the root logger's handlers (where every record ends up) one more.
REDACTED_LOGGERS = ("aiohttp.access", "aiohttp.server", "aiohttp.web", "aiohttp.client")


def install_log_redaction() -> None:
    root = logging.getLogger()
    targets: list[logging.Filterer] = [logging.getLogger(name) for name in REDACTED_LOGGERS]
    targets += root.handlers
    for target in targets:
        if not any(isinstance(f, TokenRedactingFilter) for f in target.filters):
            target.addFilter(TokenRedactingFilter())


# --- saying at start what is protected --------------------------------------------------------


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def announce(policy: AccessPolicy, bind_host: str, port: int, open_health: Iterable[str]) -> None:
    """One start-up line about auth, loud when it is off (an ERROR beyond loopback)."""
    where = f"http://{bind_host}:{port}"
    if policy.secret is None and policy.static_publish_token is None:
        level = logging.WARNING if is_loopback(bind_host) else logging.ERROR
        gateway = policy.service == "gateway"
        log.log(
            level,
            "*** AUTH IS OFF *** AUTH_SECRET is not set%s: anyone who can reach %s can %s. "
            "Set AUTH_SECRET (32+ characters) and mint tokens with `python -m framebus.token`.",
            " and GATEWAY_TOKEN is not set" if gateway else "",
            where,
            "post frames and watch every camera" if gateway else "watch every camera",
        )
        return
    if policy.secret is None:
        log.warning(
            "AUTH_SECRET is not set: GATEWAY_TOKEN protects ingest only; anyone who can reach %s can "
            "watch every camera. GATEWAY_TOKEN is deprecated: set AUTH_SECRET instead.",
            where,
        )
        return
    if policy.secret in EXAMPLE_SECRETS:
        log.warning(
            "AUTH_SECRET is the example value from .env: anyone with a copy of framebus can mint tokens "
            "for this deployment. Set your own (FRAMEBUS_AUTH_SECRET in .env for compose)."
        )
    if policy.static_publish_token is not None:
        log.warning(
            "GATEWAY_TOKEN is deprecated: it is still accepted as a publish:* token; capture mints its "
            "own tokens from AUTH_SECRET, so unset GATEWAY_TOKEN once every publisher does."
        )
    opened = ", ".join(open_health) or "none"
    log.info("auth is on: every read and publish endpoint needs a token (open without one: %s)", opened)


def open_health_paths(open_livez: bool, open_readyz: bool, open_metrics: bool) -> list[str]:
    flags = {"/livez": open_livez, "/readyz": open_readyz, "/metrics": open_metrics}
    return [path for path, is_open in flags.items() if is_open]


def install(app: web.Application, policy: AccessPolicy, settings: CommonSettings, port: int) -> None:
    """Adds the token middleware, keeps tokens out of the logs, and says at start what is protected."""
    install_log_redaction()
    app.middlewares.append(access_middleware(policy))

    async def say_what_is_protected(app: web.Application) -> None:
        health = open_health_paths(
            settings.auth_open_livez, settings.auth_open_readyz, settings.auth_open_metrics
        )
        announce(policy, settings.bind_host, port, health)

    app.on_startup.append(say_what_is_protected)
