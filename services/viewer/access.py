"""Who may call which viewer endpoint, and the page a browser sees when it may not."""

from __future__ import annotations

import html

from aiohttp import web

from services.viewer.settings import ViewerSettings
from services.viewer.views import STATIC
from shared.auth import (
    OPEN as OPEN_ROUTE,
    AccessPolicy,
    Rule,
    camera_in_query,
    camera_in_query_or_any,
    health_rules,
)
from shared.auth_notice import install
from shared.tokens import READ

DENIED_TEMPLATE = (STATIC / "denied.html").read_text()
DENIED_TITLES = {401: "Not authorised", 403: "Not allowed to watch this camera"}


def viewer_rules(default_camera: str) -> dict[str, dict[str, Rule | None]]:
    per_camera = Rule(READ, camera_in_query(default_camera))
    return {
        # The page itself: any read scope, or the one camera its ?camera= names.
        "/": {"GET": Rule(READ, camera_in_query_or_any, page=True)},
        "/stream.mjpg": {"GET": per_camera},
        "/snapshot.jpg": {"GET": per_camera},
        "/api/stats": {"GET": per_camera},
        "/api/results": {"GET": per_camera},
        # Any read scope; the handler lists only the cameras the token may read.
        "/api/cameras": {"GET": Rule(READ)},
        # Style and script are the same for everyone and carry no pictures.
        "/static": {"GET": OPEN_ROUTE},
    }


def denied_page(status: int, message: str) -> str:
    """The "not authorised" page; the message says why (never the token)."""
    title = DENIED_TITLES.get(status, "Not authorised")
    return DENIED_TEMPLATE.replace("{{title}}", html.escape(title)).replace(
        "{{reason}}", html.escape(message)
    )


def viewer_policy(settings: ViewerSettings) -> AccessPolicy:
    health = (settings.auth_open_livez, settings.auth_open_readyz, settings.auth_open_metrics)
    return AccessPolicy(
        service="viewer",
        secret=settings.auth_secret_value,
        rules={**viewer_rules(settings.camera_id), **health_rules(*health)},
        accept_cookie=True,
        cookie_secure=settings.auth_cookie_secure,
        denied_page=denied_page,
    )


def install_access_control(app: web.Application, settings: ViewerSettings) -> None:
    """Adds the token middleware and the start-up line saying what is protected."""
    policy = viewer_policy(settings)
    install(app, policy, settings, settings.viewer_port)
