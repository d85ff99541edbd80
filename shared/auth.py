"""Access control on every endpoint: which route needs which scope, and the middleware.

Clients present a token (:mod:`shared.tokens`) as ``Authorization: Bearer <token>`` or, where
a browser cannot set headers (``<img>`` MJPEG, WebSocket), as ``?token=<token>``; the viewer
page trades the query parameter for an HttpOnly cookie (see :class:`AccessPolicy`). Without
``AUTH_SECRET`` auth is off and every service says so at start (:mod:`shared.auth_notice`).
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.typedefs import Middleware

from shared.tokens import (
    ADMIN,
    COOKIE_NAME,
    MONITOR,
    NO_GRANT,
    OPEN_GRANT,
    PUBLISH,
    QUERY_PARAMETER,
    Denied,
    Grant,
    Scope,
    verify,
)

log = logging.getLogger("framebus.auth")


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
