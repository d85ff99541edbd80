"""Who may call which gateway endpoint (the policy; the mechanism is shared/auth.py)."""

from __future__ import annotations

import logging

from aiohttp import web

from services.gateway import metrics
from services.gateway.settings import GatewaySettings
from shared.auth import AccessPolicy, Rule, camera_in_path, health_rules
from shared.auth_notice import install
from shared.logs import RateLimitedLog
from shared.tokens import PUBLISH, READ, Denied

INGEST_ROUTE = "/cameras/{camera}/frames"

GATEWAY_RULES: dict[str, dict[str, Rule | None]] = {
    INGEST_ROUTE: {"POST": Rule(PUBLISH, camera_in_path)},
    "/cameras/{camera}/latest.jpg": {"GET": Rule(READ, camera_in_path)},
    "/cameras/{camera}/ws": {"GET": Rule(READ, camera_in_path)},
    # An algorithm's results travel like frames: published by a publisher, read by readers.
    "/cameras/{camera}/results": {"POST": Rule(PUBLISH, camera_in_path), "GET": Rule(READ, camera_in_path)},
    # Any read scope lists cameras; the handler shows only those the token may read.
    "/cameras": {"GET": Rule(READ)},
}


def gateway_policy(settings: GatewaySettings) -> AccessPolicy:
    health = (settings.auth_open_livez, settings.auth_open_readyz, settings.auth_open_metrics)
    return AccessPolicy(
        service="gateway",
        secret=settings.auth_secret_value,
        rules={**GATEWAY_RULES, **health_rules(*health)},
        static_publish_token=settings.gateway_token,
        on_denied=_count_refused_ingest,
    )


_refusal_log = RateLimitedLog(logging.getLogger("framebus.gateway"))


def _count_refused_ingest(request: web.Request, rule: Rule, denial: Denied) -> None:
    # Refused ingest stays visible where every other refusal is: framebus_frames_rejected_total.
    if rule.action != PUBLISH:
        return
    reason = "unauthorized" if denial.status == 401 else "forbidden"
    metrics.FRAMES_REJECTED.labels(reason).inc()
    _refusal_log.warning("rejected ingest (%s): %s", reason, denial.message)


def install_access_control(app: web.Application, settings: GatewaySettings) -> None:
    """Adds the token middleware and the start-up line saying what is protected."""
    policy = gateway_policy(settings)
    install(app, policy, settings, settings.gateway_port)
