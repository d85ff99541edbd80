"""The environment our services run with as child processes of the tests and the bench.

A developer's shell may carry framebus settings (``TRANSPORT=http`` from ``make run``, a
``REDIS_URL``...): they are dropped, so what a test or a bench case runs is what it says.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PORT_VARS = {"capture": "CAPTURE_PORT", "gateway": "GATEWAY_PORT", "viewer": "VIEWER_PORT"}


def setting_env_names() -> set[str]:
    """Every environment variable a service's settings class reads."""
    from services.capture.settings import CaptureSettings
    from services.gateway.settings import GatewaySettings
    from services.viewer.settings import ViewerSettings
    from shared.settings import env_names

    names = set(PORT_VARS.values())
    for cls in (CaptureSettings, GatewaySettings, ViewerSettings):
        names |= env_names(cls)
    return names


def service_env(port_var: str, port: int, env: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """os.environ without inherited settings, plus BIND_HOST=127.0.0.1, PYTHONUNBUFFERED=1, the
    repository on PYTHONPATH and ``port`` in ``port_var``; then ``env`` on top (None removes)."""
    drop = setting_env_names()
    child = {k: v for k, v in os.environ.items() if k not in drop}
    child.update({"BIND_HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1", port_var: str(port)})
    child["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), child.get("PYTHONPATH", "")) if p)
    for key, value in (env or {}).items():
        if value is None:
            child.pop(key, None)
        else:
            child[key] = str(value)
    return child
