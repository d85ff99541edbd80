"""Signed, expiring tokens whose scopes say who may read or publish which camera.

A token is a JWT (HS256, signed with ``AUTH_SECRET``) with ``iss``, ``iat``, ``exp`` and a
``scopes`` list. A scope is ``<action>:<camera pattern>`` (``read:cam*``, ``publish:cam0``;
fnmatch patterns over camera ids) or one of the camera-less scopes ``admin`` (everything) and
``monitor`` (the health endpoints when a setting closes them). :mod:`shared.auth` checks them
on every endpoint; this module mints and verifies them.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import jwt

log = logging.getLogger("framebus.auth")


ALGORITHM = "HS256"
ISSUER = "framebus"
MIN_SECRET_CHARS = 32
# Hosts' clocks drift; a few seconds of grace on exp/iat avoids flapping at the edges.
LEEWAY_SECONDS = 5.0
QUERY_PARAMETER = "token"
# The placeholder shipped in .env: still accepted (compose must start out of the box), never quietly.
EXAMPLE_SECRETS = frozenset({"framebus-example-secret-change-me-0123456789"})
COOKIE_NAME = "framebus_token"

READ = "read"
PUBLISH = "publish"
ADMIN = "admin"
MONITOR = "monitor"
CAMERA_ACTIONS = (READ, PUBLISH)
PLAIN_SCOPES = (ADMIN, MONITOR)

# A camera pattern: camera-id characters plus fnmatch's * ? [ ] !
_PATTERN = re.compile(r"[A-Za-z0-9_*?\[\]!-]{1,64}")


class ScopeError(ValueError):
    """A scope string that is not ``read:<pattern>``, ``publish:<pattern>``, ``admin`` or ``monitor``."""


@dataclass(frozen=True, slots=True)
class Scope:
    action: str
    pattern: str = "*"

    @classmethod
    def parse(cls, text: str) -> Scope:
        action, sep, pattern = text.strip().partition(":")
        if action in PLAIN_SCOPES and not sep:
            return cls(action, "*")
        if action not in CAMERA_ACTIONS or not sep:
            raise ScopeError(
                f"scope {text[:80]!r} must be read:<camera pattern>, publish:<camera pattern>, "
                "admin or monitor"
            )
        if not _PATTERN.fullmatch(pattern):
            raise ScopeError(f"camera pattern {pattern[:80]!r} must match [A-Za-z0-9_*?[]!-]{{1,64}}")
        return cls(action, pattern)

    def __str__(self) -> str:
        return self.action if self.action in PLAIN_SCOPES else f"{self.action}:{self.pattern}"

    def allows(self, action: str, camera: str | None) -> bool:
        """``camera=None`` asks "any camera at all?" (a camera list, filtered afterwards)."""
        if self.action == ADMIN:
            return True
        if self.action != action:
            return False
        return camera is None or fnmatchcase(camera, self.pattern)


@dataclass(frozen=True, slots=True)
class Grant:
    """What the presented credential allows; ``via`` says which kind it was (never the credential)."""

    scopes: tuple[Scope, ...]
    via: str
    expires_at: float | None = None

    def allows(self, action: str, camera: str | None = None) -> bool:
        return any(scope.allows(action, camera) for scope in self.scopes)

    def may_read(self, camera: str) -> bool:
        return self.allows(READ, camera)


OPEN_GRANT = Grant((Scope(ADMIN),), via="auth off")
NO_GRANT = Grant((), via="none")


class Denied(Exception):
    """401 (no valid credential) or 403 (a valid one without the needed scope)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_scopes(texts: Iterable[str]) -> tuple[Scope, ...]:
    return tuple(Scope.parse(text) for text in texts)


def mint(
    secret: str,
    scopes: Iterable[Scope | str],
    ttl_seconds: float,
    *,
    now: float | None = None,
    subject: str = "",
) -> str:
    """A signed token carrying ``scopes`` that expires ``ttl_seconds`` after ``now``."""
    issued = time.time() if now is None else now
    normalised = [str(s if isinstance(s, Scope) else Scope.parse(s)) for s in scopes]
    if not normalised:
        raise ScopeError("a token needs at least one scope")
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "iat": int(issued),
        "exp": int(issued + ttl_seconds),
        "scopes": normalised,
    }
    if subject:
        claims["sub"] = subject
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify(secret: str, token: str) -> Grant:
    """The grant a token carries; :class:`Denied` (401) if it is malformed, forged or expired."""
    try:
        # PyJWT compares signatures with hmac.compare_digest and pins the algorithm list,
        # so neither "alg: none" nor a timing oracle gets through.
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise Denied(401, "token expired") from None
    except jwt.InvalidSignatureError:
        raise Denied(401, "token signature does not match AUTH_SECRET") from None
    except jwt.InvalidTokenError as exc:
        # PyJWT's messages name the claim or the problem, never the token itself.
        raise Denied(401, f"invalid token ({exc.__class__.__name__}: {exc})") from None
    raw = claims.get("scopes")
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise Denied(401, "invalid token (scopes must be a list of strings)")
    try:
        scopes = parse_scopes(raw)
    except ScopeError as exc:
        raise Denied(401, f"invalid token ({exc})") from None
    return Grant(scopes, via="token", expires_at=float(claims["exp"]))


class TokenMinter:
    """A service's own short-lived token (capture: publish its camera; viewer: read), minted
    again once half its lifetime has passed so a request never carries one about to expire."""

    def __init__(
        self, secret: str, scopes: Iterable[str], ttl_seconds: float = 600.0, subject: str = ""
    ) -> None:
        self._secret = secret
        self._scopes = parse_scopes(scopes)
        self._ttl = ttl_seconds
        self._subject = subject
        self._token = ""
        self._renew_at = 0.0

    def token(self) -> str:
        now = time.time()
        if now >= self._renew_at:
            self._token = mint(self._secret, self._scopes, self._ttl, now=now, subject=self._subject)
            self._renew_at = now + self._ttl / 2
        return self._token

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}


def bearer_headers(
    secret: str | None, static_token: str | None, minter_scopes: Iterable[str], subject: str
) -> Callable[[], dict[str, str]]:
    """Headers for a service's own requests: a minted token when it holds AUTH_SECRET, the
    deprecated static GATEWAY_TOKEN otherwise, nothing when auth is off."""
    if secret:
        minter = TokenMinter(secret, minter_scopes, subject=subject)
        return minter.headers
    if static_token:
        fixed = {"Authorization": f"Bearer {static_token}"}
        return lambda: fixed
    return lambda: {}
