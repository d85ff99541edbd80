"""Access control: signed, expiring tokens whose scopes say who may read or publish which camera.

A token is a JWT (HS256, signed with ``AUTH_SECRET``) with ``iss``, ``iat``, ``exp`` and a
``scopes`` list. A scope is ``<action>:<camera pattern>`` (``read:cam*``, ``publish:cam0``;
fnmatch patterns over camera ids) or one of the camera-less scopes ``admin`` (everything) and
``monitor`` (the health endpoints when a setting closes them).

Clients present a token as ``Authorization: Bearer <token>`` or, where a browser cannot set
headers (``<img>`` MJPEG, WebSocket), as ``?token=<token>``; the viewer page trades the query
parameter for an HttpOnly cookie (see :class:`AccessPolicy`). Without ``AUTH_SECRET`` auth is
off and every service says so at start.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from ipaddress import ip_address
from typing import Any

import jwt
from aiohttp import web
from aiohttp.typedefs import Middleware

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


# --- which endpoint needs what ----------------------------------------------------------------

CameraOf = Callable[[web.Request], "str | None"]


def camera_in_path(request: web.Request) -> str | None:
    return request.match_info.get("camera")


def any_camera(request: web.Request) -> str | None:
    return None


def camera_in_query(default: str) -> CameraOf:
    def camera(request: web.Request) -> str | None:
        return request.query.get("camera") or default

    return camera


def camera_in_query_or_any(request: web.Request) -> str | None:
    return request.query.get("camera") or None


@dataclass(frozen=True, slots=True)
class Rule:
    """What a route needs: ``action`` on the camera ``camera(request)`` names (None: any camera)."""

    action: str
    camera: CameraOf = any_camera
    page: bool = False  # an HTML page: denials render a page, ?token= is traded for a cookie


OPEN = None  # a route anyone may call


@dataclass
class AccessPolicy:
    """Everything the middleware needs to know about one service."""

    service: str
    secret: str | None
    # route canonical path -> method -> rule (None: open). A route not listed needs "admin".
    rules: Mapping[str, Mapping[str, Rule | None]]
    static_publish_token: str | None = None
    accept_cookie: bool = False
    cookie_secure: bool = False
    denied_page: Callable[[int, str], str] | None = None
    on_denied: Callable[[web.Request, Rule, Denied], None] = field(default=lambda request, rule, denial: None)

    @property
    def enabled(self) -> bool:
        return bool(self.secret or self.static_publish_token)

    def rule_for(self, request: web.Request) -> Rule | None:
        match = request.match_info
        if match.http_exception is not None:
            return OPEN  # 404/405: nothing to protect, let aiohttp answer
        canonical = match.route.resource.canonical if match.route.resource else ""
        methods = self.rules.get(canonical)
        if methods is None:
            return Rule(ADMIN)  # fail closed: a route nobody described is not open by accident
        method = "GET" if request.method == "HEAD" else request.method
        return methods.get(method, Rule(ADMIN))

    def authorize(self, request: web.Request, rule: Rule) -> Grant:
        if not self.enabled:
            return OPEN_GRANT
        token = self.token_of(request)
        grant = self._grant_for(token, rule)
        camera = rule.camera(request)
        if not grant.allows(rule.action, camera):
            what = f"{rule.action}:{camera}" if camera else rule.action
            raise Denied(403, f"token does not allow {what}")
        return grant

    def _grant_for(self, token: str | None, rule: Rule) -> Grant:
        static = self.static_publish_token
        if self.secret is None and rule.action != PUBLISH:
            # Legacy mode (GATEWAY_TOKEN only): reads stay open, whatever token a client sends
            # (a client library that sends GATEWAY_TOKEN everywhere must not be refused a read).
            return OPEN_GRANT
        if token is not None and static is not None and hmac.compare_digest(token.encode(), static.encode()):
            return Grant((Scope(PUBLISH, "*"),), via="GATEWAY_TOKEN")
        if self.secret is None:
            # Legacy mode: ingest is protected as before.
            raise Denied(401, "missing or wrong bearer token")
        if token is None:
            raise Denied(401, "missing bearer token (Authorization: Bearer <token>, or ?token=)")
        return verify(self.secret, token)

    def token_of(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization")
        if header is not None:
            scheme, _, value = header.strip().partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise Denied(
                    401, "Authorization header must be 'Bearer <token>' (missing or wrong bearer token)"
                )
            return value.strip()
        if QUERY_PARAMETER in request.query:
            return request.query[QUERY_PARAMETER]
        # Only for reads: a cookie rides along on requests another site triggers, a header never does.
        if self.accept_cookie and request.method in ("GET", "HEAD"):
            return request.cookies.get(COOKIE_NAME)
        return None

    def denial(self, request: web.Request, rule: Rule, denial: Denied) -> web.Response:
        challenge = 'Bearer realm="framebus"'
        if denial.status == 401 and self.token_of_quietly(request) is not None:
            challenge += ', error="invalid_token"'
        elif denial.status == 403:
            challenge += ', error="insufficient_scope"'
        headers = {"WWW-Authenticate": challenge, "Cache-Control": "no-store"}
        if rule.page and self.denied_page is not None:
            response = web.Response(
                status=denial.status,
                text=self.denied_page(denial.status, denial.message),
                content_type="text/html",
                headers=headers,
            )
        else:
            response = web.Response(status=denial.status, text=denial.message + "\n", headers=headers)
        if denial.status == 401 and self.accept_cookie and COOKIE_NAME in request.cookies:
            response.del_cookie(COOKIE_NAME, path="/")  # an expired or foreign cookie is of no use
        return response

    def token_of_quietly(self, request: web.Request) -> str | None:
        try:
            return self.token_of(request)
        except Denied:
            return None

    def cookie_redirect(self, request: web.Request, grant: Grant) -> web.Response:
        """The page opened with ?token=: keep the token in an HttpOnly cookie and send the browser
        to the same URL without it, so the token leaves the address bar and the history."""
        clean = request.rel_url.without_query_params(QUERY_PARAMETER)
        response = web.HTTPSeeOther(location=str(clean), headers={"Cache-Control": "no-store"})
        max_age = None if grant.expires_at is None else max(0, int(grant.expires_at - time.time()))
        response.set_cookie(
            COOKIE_NAME,
            request.query[QUERY_PARAMETER],
            max_age=max_age,
            path="/",
            httponly=True,
            # Lax, not Strict: a token link opened from a chat or mail is a cross-site navigation,
            # and Strict would withhold the cookie on the redirect that follows. No GET here changes
            # anything, and Lax still keeps the cookie off cross-site <img>, fetch and POST.
            samesite="Lax",
            secure=self.cookie_secure or request.secure,
        )
        return response


GRANT = web.RequestKey("grant", Grant)


def grant_of(request: web.Request) -> Grant:
    """The grant the middleware stored; a request it never saw may see nothing (fail closed)."""
    grant = request.get(GRANT)
    return grant if isinstance(grant, Grant) else NO_GRANT


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def access_middleware(policy: AccessPolicy) -> Middleware:
    @web.middleware
    async def check_access(request: web.Request, handler: Handler) -> web.StreamResponse:
        rule = policy.rule_for(request)
        if rule is None:
            request[GRANT] = OPEN_GRANT
            return await handler(request)
        try:
            grant = policy.authorize(request, rule)
        except Denied as denial:
            policy.on_denied(request, rule, denial)
            return policy.denial(request, rule, denial)
        # Only a token that came in the query (the one just checked) goes into the cookie.
        from_query = QUERY_PARAMETER in request.query and "Authorization" not in request.headers
        if rule.page and policy.accept_cookie and policy.enabled and from_query:
            return policy.cookie_redirect(request, grant)
        request[GRANT] = grant
        return await handler(request)

    return check_access


def health_rules(
    open_livez: bool, open_readyz: bool, open_metrics: bool
) -> dict[str, dict[str, Rule | None]]:
    def rule(is_open: bool) -> dict[str, Rule | None]:
        return {"GET": OPEN if is_open else Rule(MONITOR)}

    return {"/livez": rule(open_livez), "/readyz": rule(open_readyz), "/metrics": rule(open_metrics)}


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
