"""The three health questions every service answers: /livez, /readyz, /metrics.

Liveness never looks at dependencies (tying it to Redis or the camera causes restart
cascades); readiness asks each named check; metrics is the Prometheus text format.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, disable_created_metrics, generate_latest

# The *_created series double the scrape size and no dashboard of ours reads them.
disable_created_metrics()


@dataclass(frozen=True, slots=True)
class CheckResult:
    ok: bool
    detail: str


Check = Callable[[], CheckResult]


class Readiness:
    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}

    def add(self, name: str, check: Check) -> None:
        self._checks[name] = check

    def evaluate(self) -> tuple[bool, dict[str, dict[str, object]]]:
        results = {name: check() for name, check in self._checks.items()}
        body = {name: {"ok": r.ok, "detail": r.detail} for name, r in results.items()}
        return all(r.ok for r in results.values()), body


class Freshness:
    """Age of the newest frame, on the monotonic clock."""

    def __init__(self) -> None:
        self._last: float | None = None

    def mark(self, ago: float = 0.0) -> None:
        """The newest frame is ``ago`` seconds old now."""
        last = time.monotonic() - ago
        if self._last is None or last > self._last:
            self._last = last

    def age(self) -> float | None:
        return None if self._last is None else time.monotonic() - self._last

    def check(self, bound: float, what: str = "newest frame") -> CheckResult:
        age = self.age()
        if age is None:
            return CheckResult(False, f"no {what} yet")
        if age > bound:
            return CheckResult(False, f"{what} is {age:.1f}s old (bound {bound:g}s)")
        return CheckResult(True, f"{what} is {age:.2f}s old")


READINESS = web.AppKey("readiness", Readiness)


async def livez(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    ready, checks = request.app[READINESS].evaluate()
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503
    )


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_health_routes(app: web.Application, readiness: Readiness) -> None:
    app[READINESS] = readiness
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
