"""Access control (issue 12): scoped, expiring tokens on every gateway and viewer endpoint, the
viewer page's cookie, camera lists filtered by the token, tokens kept out of every output, and
Redis ACL users that can do only their own job.

The system under test is real: gateway, capture (posting through the gateway with a token it
mints itself) and viewer (following the gateway with a token it mints itself), as processes.
"""

from __future__ import annotations

import http.client
import logging
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from shared.auth_notice import TokenRedactingFilter, redact_tokens
from shared.demand import DemandSignal, parse_pace
from shared.tokens import mint
from tests.fixtures import ServiceProcess, free_port, wait_until
from tests.fixtures.factories import ServiceFactory
from tests.fixtures.frames import GOOD_JPEG, frame_headers, rejected
from tests.fixtures.processes import REPO_ROOT, start_service_process
from tests.fixtures.servers import redis_ping

SECRET = "test-auth-secret-0123456789abcdefghijklmnop"
OTHER_SECRET = "some-other-secret-0123456789abcdefghijklmn"
HOUR = 3600.0

# Every token a test sends is remembered, so the last check can prove none leaked.
ISSUED: set[str] = set()


def token(*scopes: str, secret: str = SECRET, ttl: float = HOUR, now: float | None = None) -> str:
    issued = mint(secret, scopes, ttl, now=now)
    ISSUED.add(issued)
    return issued


@dataclass(frozen=True)
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def call(
    base: str,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    read_body: bool = True,
) -> Reply:
    """One HTTP request on its own connection. ``read_body=False`` for endless responses
    (MJPEG) and WebSocket upgrades: only the status line and headers are read."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        payload = response.read() if read_body and response.status != 101 else b""
        return Reply(response.status, response.headers, payload)
    finally:
        connection.close()


def bearer(value: str | None) -> dict[str, str]:
    return {} if value is None else {"Authorization": f"Bearer {value}"}


WEBSOCKET_UPGRADE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


# --- tokens and scopes, as functions ----------------------------------------------------------------


def test_scopes_are_fnmatch_patterns_over_camera_ids() -> None:
    from shared.tokens import Scope

    assert Scope.parse("read:cam*").allows("read", "cam12")
    assert not Scope.parse("read:cam*").allows("read", "lobby1")
    assert not Scope.parse("read:cam*").allows("publish", "cam1")
    assert Scope.parse("publish:lobby-[12]").allows("publish", "lobby-2")
    assert Scope.parse("admin").allows("publish", "anything")
    assert Scope.parse("read:cam0").allows("read", None)  # "any camera?" for lists


@pytest.mark.parametrize(
    "text", ["read", "read:", "write:cam0", "read:cam/0", "admin:cam0", "read:" + "x" * 65]
)
def test_malformed_scopes_are_refused(text: str) -> None:
    from shared.tokens import Scope, ScopeError

    with pytest.raises(ScopeError):
        Scope.parse(text)


def test_unsigned_and_scope_less_tokens_are_refused() -> None:
    import jwt

    from shared.tokens import Denied, verify

    now = int(time.time())
    claims = {"iss": "framebus", "iat": now, "exp": now + 60, "scopes": ["admin"]}
    unsigned = jwt.encode(claims, key=None, algorithm="none")
    with pytest.raises(Denied) as refused:
        verify(SECRET, unsigned)
    assert refused.value.status == 401
    for bad_scopes in ("admin", ["read:cam/0"], [1]):
        forged_shape = jwt.encode({**claims, "scopes": bad_scopes}, SECRET, algorithm="HS256")
        with pytest.raises(Denied):
            verify(SECRET, forged_shape)
    no_exp = jwt.encode({k: v for k, v in claims.items() if k != "exp"}, SECRET, algorithm="HS256")
    with pytest.raises(Denied, match="exp"):
        verify(SECRET, no_exp)


# --- the system: gateway <- capture (minted publish token); viewer (minted read token) -> gateway


@dataclass
class System:
    gateway: ServiceProcess
    capture: ServiceProcess
    viewer: ServiceProcess

    @property
    def all(self) -> list[ServiceProcess]:
        return [self.gateway, self.capture, self.viewer]


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    logs = tmp_path_factory.mktemp("auth-logs")
    common: dict[str, str | None] = {"AUTH_SECRET": SECRET, "LOG_LEVEL": "DEBUG"}
    started: list[ServiceProcess] = []
    try:
        gateway = start_service_process("gateway", common, None, logs)
        started.append(gateway)
        transport = {**common, "TRANSPORT": "http", "GATEWAY_URL": gateway.url}
        small = {"CAPTURE_WIDTH": "320", "CAPTURE_HEIGHT": "240", "CAPTURE_FPS": "10"}
        capture = start_service_process("capture", {**transport, **small}, None, logs)
        started.append(capture)
        viewer = start_service_process("viewer", {**transport, "VIEWER_CAMERAS": "lobby1"}, None, logs)
        started.append(viewer)
        # lobby1 exists at the gateway once something posts for it (a test publisher).
        lobby = bearer(token("publish:lobby1"))
        status = call(gateway.url, "POST", "/cameras/lobby1/frames", {**frame_headers(1), **lobby}, GOOD_JPEG)
        assert status.status == 204, status.text
        viewer.wait_ready(timeout=20)  # the viewer's own read token got it cam0's frames
        yield System(gateway, capture, viewer)
    finally:
        for service in reversed(started):
            service.terminate(timeout=5.0)


# --- the matrix: every endpoint x every kind of credential --------------------------------------


@dataclass(frozen=True)
class Endpoint:
    service: str  # "gateway" | "viewer"
    method: str
    path: str
    action: str  # what it needs: "read" | "publish"
    ok: int  # status with the right token
    listing: bool = False  # a camera list: a token for other cameras sees an empty list, not 403
    streaming: bool = False
    upgrade: bool = False

    def __str__(self) -> str:
        return f"{self.service} {self.method} {self.path}"


ENDPOINTS = [
    Endpoint("gateway", "POST", "/cameras/cam9/frames", "publish", 204),
    Endpoint("gateway", "GET", "/cameras/cam0/latest.jpg", "read", 200),
    Endpoint("gateway", "GET", "/cameras/cam0/ws", "read", 101, upgrade=True),
    Endpoint("gateway", "GET", "/cameras", "read", 200, listing=True),
    Endpoint("viewer", "GET", "/?camera=cam0", "read", 200),
    Endpoint("viewer", "GET", "/stream.mjpg?camera=cam0", "read", 200, streaming=True),
    Endpoint("viewer", "GET", "/snapshot.jpg?camera=cam0", "read", 200),
    Endpoint("viewer", "GET", "/api/stats?camera=cam0", "read", 200),
    Endpoint("viewer", "GET", "/api/cameras", "read", 200, listing=True),
]


def credential(case: str, endpoint: Endpoint) -> str | None:
    camera = "cam9" if endpoint.action == "publish" else "cam0"
    other_action = "read" if endpoint.action == "publish" else "publish"
    return {
        "no token": None,
        "garbage": "not-a-token",
        "expired": token(f"{endpoint.action}:{camera}", ttl=60, now=time.time() - HOUR),
        "wrong signature": token(f"{endpoint.action}:{camera}", secret=OTHER_SECRET),
        "wrong action": token(f"{other_action}:{camera}"),
        "right scope, wrong camera": token(f"{endpoint.action}:lobby*"),
        "right scope, right camera": token(f"{endpoint.action}:cam*"),
    }[case]


CASES = [
    ("no token", 401),
    ("garbage", 401),
    ("expired", 401),
    ("wrong signature", 401),
    ("wrong action", 403),
    ("right scope, wrong camera", 403),
    ("right scope, right camera", 0),  # 0: the endpoint's own success status
]


def expected_status(case: str, expected: int, endpoint: Endpoint) -> int:
    if expected == 0 or (case == "right scope, wrong camera" and endpoint.listing):
        return endpoint.ok
    return expected


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
@pytest.mark.parametrize(("case", "expected"), CASES, ids=[c for c, _ in CASES])
def test_every_endpoint_answers_each_kind_of_credential_with_the_right_status(
    system: System, endpoint: Endpoint, case: str, expected: int
) -> None:
    service = system.gateway if endpoint.service == "gateway" else system.viewer
    headers = bearer(credential(case, endpoint))
    body = None
    if endpoint.method == "POST":
        headers |= frame_headers(int(time.time() * 1000) % 1_000_000_000)
        body = GOOD_JPEG
    if endpoint.upgrade:
        headers |= WEBSOCKET_UPGRADE
    reply = call(
        service.url,
        endpoint.method,
        endpoint.path,
        headers,
        body,
        read_body=not (endpoint.streaming or endpoint.upgrade),
    )

    assert reply.status == expected_status(case, expected, endpoint), reply.text
    if reply.status == 401:
        assert reply.headers["WWW-Authenticate"].startswith('Bearer realm="framebus"')
    if reply.status == 403:
        assert 'error="insufficient_scope"' in reply.headers["WWW-Authenticate"]


def test_refused_ingest_is_counted_like_every_other_refusal(system: System) -> None:
    before = (rejected(system.gateway, "unauthorized"), rejected(system.gateway, "forbidden"))
    post = {**frame_headers(7), "Content-Type": "image/jpeg"}
    call(system.gateway.url, "POST", "/cameras/cam9/frames", post, GOOD_JPEG)
    call(system.gateway.url, "POST", "/cameras/cam9/frames", {**post, **bearer(token("read:*"))}, GOOD_JPEG)
    assert rejected(system.gateway, "unauthorized") == before[0] + 1
    assert rejected(system.gateway, "forbidden") == before[1] + 1


# --- the ways a token may travel -----------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_authorization_scheme_is_case_insensitive(system: System, scheme: str) -> None:
    headers = {"Authorization": f"{scheme} {token('read:cam0')}"}
    assert call(system.gateway.url, "GET", "/cameras/cam0/latest.jpg", headers).status == 200


def test_a_header_without_the_bearer_scheme_is_refused(system: System) -> None:
    reply = call(system.gateway.url, "GET", "/cameras/cam0/latest.jpg", {"Authorization": token("read:cam0")})
    assert reply.status == 401 and "Bearer" in reply.text


def test_browsers_may_pass_the_token_in_the_query_for_mjpeg_and_websocket(system: System) -> None:
    read = token("read:cam0")
    stream = call(system.viewer.url, "GET", f"/stream.mjpg?camera=cam0&token={read}", read_body=False)
    assert stream.status == 200 and stream.headers["Content-Type"].startswith("multipart/x-mixed-replace")
    ws = call(system.gateway.url, "GET", f"/cameras/cam0/ws?token={read}", WEBSOCKET_UPGRADE, read_body=False)
    assert ws.status == 101
    refused = call(
        system.gateway.url, "GET", "/cameras/cam0/ws?token=garbage", WEBSOCKET_UPGRADE, read_body=False
    )
    assert refused.status == 401


# --- camera lists ---------------------------------------------------------------------------------


def test_camera_lists_show_only_the_cameras_the_token_may_read(system: System) -> None:
    import json

    lobby_only = bearer(token("read:lobby*"))
    everything = bearer(token("read:*"))

    def gateway_list(headers: dict[str, str]) -> list[str]:
        reply = call(system.gateway.url, "GET", "/cameras", headers)
        return [c["camera"] for c in json.loads(reply.body)["cameras"]]

    assert gateway_list(lobby_only) == ["lobby1"]
    assert {"cam0", "lobby1"} <= set(gateway_list(everything))

    viewer_list = json.loads(call(system.viewer.url, "GET", "/api/cameras", lobby_only).body)
    assert [c["camera"] for c in viewer_list["cameras"]] == ["lobby1"]
    assert viewer_list["default"] == "lobby1"  # the page opens a camera it may show, not cam0
    full = json.loads(call(system.viewer.url, "GET", "/api/cameras", everything).body)
    assert [c["camera"] for c in full["cameras"]] == ["cam0", "lobby1"] and full["default"] == "cam0"


def test_a_publish_token_does_not_list_cameras(system: System) -> None:
    assert call(system.gateway.url, "GET", "/cameras", bearer(token("publish:*"))).status == 403


# --- results over a gateway that wants tokens ------------------------------------------------------


def test_the_viewer_shows_results_from_a_gateway_that_wants_tokens(system: System) -> None:
    import json

    import framebus

    algorithm = token("read:cam0", "publish:cam0")
    with framebus.subscribe("cam0", system.gateway.url, timeout=15, token=algorithm) as frames:
        frame = next(iter(frames))
    # Its own publisher, closed here: publish_results() would keep a thread for the process's life.
    with framebus.ResultsPublisher(system.gateway.url, token=algorithm) as results:
        published = results.publish(frame, boxes=[{"x": 1, "y": 2, "w": 3, "h": 4, "label": "part"}])
    reader = bearer(token("read:cam0"))

    def shown() -> dict[str, object] | None:
        body = json.loads(call(system.viewer.url, "GET", "/api/results?camera=cam0", reader).body)
        result = body.get("result")
        return body if result and result["seq"] == published.seq else None

    body = wait_until(shown, timeout=10, message=system.viewer.log_tail)
    assert body is not None and body["error"] is None


# --- the viewer page's cookie -----------------------------------------------------------------------


def test_the_page_opened_with_a_token_sets_an_httponly_samesite_cookie_and_drops_the_token_from_the_url(
    system: System,
) -> None:
    read = token("read:cam*", ttl=2 * HOUR)
    reply = call(system.viewer.url, "GET", f"/?camera=cam0&token={read}")

    assert reply.status == 303
    assert reply.headers["Location"] == "/?camera=cam0"
    cookie_header = reply.headers["Set-Cookie"]
    cookie = SimpleCookie(cookie_header)["framebus_token"]
    assert cookie.value == read
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/"
    assert 2 * HOUR - 60 <= int(cookie["max-age"]) <= 2 * HOUR
    assert "secure" not in cookie_header.lower()  # plain HTTP here; AUTH_COOKIE_SECURE forces it

    sent = {"Cookie": f"framebus_token={read}"}
    for path in ("/?camera=cam0", "/api/cameras", "/api/stats?camera=cam0", "/snapshot.jpg?camera=cam0"):
        assert call(system.viewer.url, "GET", path, sent).status == 200, path
    assert call(system.viewer.url, "GET", "/stream.mjpg?camera=cam0", sent, read_body=False).status == 200


def test_only_a_query_token_that_was_checked_goes_into_the_cookie(system: System) -> None:
    unchecked = token("read:*", secret=OTHER_SECRET)  # would be refused on its own
    reply = call(system.viewer.url, "GET", f"/?token={unchecked}", bearer(token("read:cam0")))
    assert reply.status == 200 and "Set-Cookie" not in reply.headers  # the header token was the one used


def test_the_page_without_a_token_is_a_clear_not_authorised_page(system: System) -> None:
    reply = call(system.viewer.url, "GET", "/")
    assert reply.status == 401
    assert reply.headers["Content-Type"].startswith("text/html")
    assert "Not authorised" in reply.text and "python -m framebus.token" in reply.text
    assert "<img" not in reply.text


def test_a_stale_cookie_is_refused_and_cleared(system: System) -> None:
    stale = token("read:*", ttl=60, now=time.time() - HOUR)
    reply = call(system.viewer.url, "GET", "/", {"Cookie": f"framebus_token={stale}"})
    assert reply.status == 401 and "expired" in reply.text
    cleared = SimpleCookie(reply.headers["Set-Cookie"])["framebus_token"]
    assert cleared.value == "" and cleared["max-age"] == "0"


def test_the_page_for_a_camera_the_token_may_not_read_says_so(system: System) -> None:
    reply = call(system.viewer.url, "GET", "/?camera=cam0", bearer(token("read:lobby*")))
    assert reply.status == 403 and "read:cam0" in reply.text and "text/html" in reply.headers["Content-Type"]


# --- health endpoints -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/metrics"])
def test_health_endpoints_stay_open_by_default(system: System, path: str) -> None:
    assert call(system.gateway.url, "GET", path).status == 200
    assert call(system.viewer.url, "GET", path).status == 200


def test_each_health_endpoint_can_be_closed_by_its_setting(start_service: ServiceFactory) -> None:
    closed = {"AUTH_OPEN_LIVEZ": "false", "AUTH_OPEN_READYZ": "false", "AUTH_OPEN_METRICS": "false"}
    gateway = start_service("gateway", {"AUTH_SECRET": SECRET, **closed}, wait=False)
    wait_until(lambda: call(gateway.url, "GET", "/livez").status == 401, timeout=15)
    monitor = bearer(token("monitor"))
    for path in ("/livez", "/readyz", "/metrics"):
        assert call(gateway.url, "GET", path).status == 401, path
        assert call(gateway.url, "GET", path, bearer(token("read:*"))).status == 403, path
        assert call(gateway.url, "GET", path, monitor).status == 200, path

    only_metrics = start_service("gateway", {"AUTH_SECRET": SECRET, "AUTH_OPEN_METRICS": "false"})
    assert call(only_metrics.url, "GET", "/readyz").status == 200
    assert call(only_metrics.url, "GET", "/metrics").status == 401


# --- start-up, settings, GATEWAY_TOKEN ------------------------------------------------------------


def test_services_without_a_secret_say_once_and_loudly_that_auth_is_off(
    start_service: ServiceFactory,
) -> None:
    gateway = start_service("gateway", {"AUTH_SECRET": None, "GATEWAY_TOKEN": None})
    viewer = start_service("viewer", {"AUTH_SECRET": None, "TRANSPORT": "http", "GATEWAY_URL": gateway.url})
    for service in (gateway, viewer):
        wait_until(lambda s=service: "AUTH IS OFF" in s.log_text(), timeout=5)  # type: ignore[misc]
        assert service.log_text().count("AUTH IS OFF") == 1
        assert call(service.url, "GET", "/api/cameras" if service is viewer else "/cameras").status == 200


def test_a_too_short_secret_stops_the_service_with_a_message_naming_the_variable(tmp_path: Path) -> None:
    short = "tooshort-secret"
    result = subprocess.run(
        [sys.executable, "-m", "services.gateway"],
        cwd=REPO_ROOT,
        env={"AUTH_SECRET": short, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    assert "AUTH_SECRET" in result.stderr and "at least 32 characters" in result.stderr
    assert short not in result.stderr


def test_the_deprecated_gateway_token_still_publishes_next_to_a_secret_but_reads_nothing(
    start_service: ServiceFactory,
) -> None:
    static = "legacy-static-gateway-token-123"
    ISSUED.add(static)
    gateway = start_service("gateway", {"AUTH_SECRET": SECRET, "GATEWAY_TOKEN": static})
    reply = call(
        gateway.url, "POST", "/cameras/cam0/frames", {**frame_headers(1), **bearer(static)}, GOOD_JPEG
    )
    assert reply.status == 204
    assert call(gateway.url, "GET", "/cameras/cam0/latest.jpg", bearer(static)).status == 403
    wait_until(lambda: "GATEWAY_TOKEN is deprecated" in gateway.log_text(), timeout=5)
    assert static not in gateway.log_text()


# --- the mint command -------------------------------------------------------------------------------


def mint_command(*args: str, secret: str | None = SECRET) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", **({"AUTH_SECRET": secret} if secret else {})}
    return subprocess.run(
        [sys.executable, "-m", "framebus.token", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
    )


def test_the_mint_command_prints_a_page_link_the_viewer_accepts(system: System) -> None:
    result = mint_command("--read", "cam*", "--ttl", "8h", "--link", f"{system.viewer.url}/?camera=cam0")
    assert result.returncode == 0, result.stderr
    link = result.stdout.strip()
    ISSUED.add(link.rsplit("token=", 1)[1])
    assert link.startswith(f"{system.viewer.url}/?camera=cam0&token=")
    reply = call(system.viewer.url, "GET", link.removeprefix(system.viewer.url))
    assert reply.status == 303 and reply.headers["Location"] == "/?camera=cam0"


def test_the_mint_command_refuses_without_the_secret_or_a_scope() -> None:
    missing = mint_command("--read", "cam0", secret=None)
    assert missing.returncode == 2 and "AUTH_SECRET is not set" in missing.stderr
    no_scope = mint_command()
    assert no_scope.returncode == 2 and "--read" in no_scope.stderr
    bad = mint_command("--read", "cam/0")
    assert bad.returncode == 2 and "camera pattern" in bad.stderr


# --- nothing leaks ------------------------------------------------------------------------------------


def test_access_log_lines_have_their_token_query_redacted() -> None:
    line = (
        '127.0.0.1 [30/Nov/2026:09:00:00 +0000] "GET /stream.mjpg?camera=cam0&token=abc.def-ghi HTTP/1.1" 200'
    )
    record = logging.LogRecord("aiohttp.access", logging.INFO, __file__, 1, line, None, None)
    assert TokenRedactingFilter().filter(record)
    assert "abc.def-ghi" not in record.getMessage()
    assert "token=***" in record.getMessage()
    jwt_text = token("read:cam0")
    assert jwt_text not in redact_tokens(f"something said {jwt_text} here")


def test_installed_redaction_hides_tokens_in_any_logger_s_lines() -> None:
    import io

    from shared.auth_notice import install_log_redaction

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        install_log_redaction()
        secret_token = token("read:cam0")
        logging.getLogger("framebus.viewer.follow").warning(
            "GET /cameras/cam0/ws?token=%s failed", secret_token
        )
        logging.getLogger("aiohttp.access").warning(
            '"GET /stream.mjpg?token=%s HTTP/1.1" 200', "plain-secret"
        )
    finally:
        root.removeHandler(handler)
    said = out.getvalue()
    assert secret_token not in said and "plain-secret" not in said
    assert said.count("token=***") == 2


def test_no_token_or_secret_appears_in_logs_readiness_or_metrics(system: System) -> None:
    # Failing query-string tokens too: the likeliest to be echoed in an error.
    call(system.viewer.url, "GET", "/stream.mjpg?token=leaky-garbage-token-1")
    call(system.gateway.url, "GET", "/cameras/cam0/ws?token=leaky-garbage-token-2", WEBSOCKET_UPGRADE)
    secrets = {SECRET, "leaky-garbage-token-1", "leaky-garbage-token-2", *ISSUED}
    for service in system.all:
        said = "\n".join(
            [
                service.log_text(),
                call(service.url, "GET", "/readyz").text,
                call(service.url, "GET", "/metrics").text,
            ]
        )
        leaked = [s[:12] + "…" for s in secrets if s in said]
        assert not leaked, f"{service.name} leaked {leaked}"
        assert "eyJ" not in said, f"{service.name} logged something shaped like a token"


# --- Redis ACL users (deploy/redis/) ----------------------------------------------------------------

ACL_SCRIPT = REPO_ROOT / "deploy" / "redis" / "redis-with-acl.sh"
ACL_PASSWORDS = {
    "REDIS_CAPTURE_PASSWORD": "capture-pw-0123456789",
    "REDIS_VIEWER_PASSWORD": "viewer-pw-0123456789",
    "REDIS_GATEWAY_PASSWORD": "gateway-pw-0123456789",
    "REDIS_ADMIN_PASSWORD": "admin-pw-0123456789",
}


@dataclass
class AclRedis:
    port: int
    acl_file: Path

    def url(self, user: str) -> str:
        password = ACL_PASSWORDS[f"REDIS_{user.upper()}_PASSWORD"]
        return f"redis://{user}:{password}@127.0.0.1:{self.port}/0"

    def client(self, user: str) -> redis.Redis:
        return redis.Redis.from_url(self.url(user), socket_timeout=2)


def start_acl_redis(workdir: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    argv = [str(ACL_SCRIPT), str(workdir / "users.acl"), "--port", str(port), "--bind", "127.0.0.1"]
    argv += [
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
        "--logfile",
        str(workdir / "redis.log"),
    ]
    log = open(workdir / "start.log", "wb")  # noqa: SIM115 - closed with the process below
    proc = subprocess.Popen(argv, env={"PATH": "/usr/bin:/bin", **env}, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return proc, port


@pytest.fixture
def acl_redis(tmp_path: Path) -> Iterator[AclRedis]:
    proc, port = start_acl_redis(tmp_path, ACL_PASSWORDS)
    try:
        wait_until(lambda: redis_ping(port) or proc.poll() is not None, timeout=10)
        assert proc.poll() is None, (tmp_path / "start.log").read_text() + (
            tmp_path / "redis.log"
        ).read_text()
        yield AclRedis(port, tmp_path / "users.acl")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def refused(call_redis: Callable[[], object]) -> bool:
    try:
        call_redis()
    except redis.exceptions.NoPermissionError:
        return True
    return False


def test_the_capture_redis_user_may_append_and_register_but_neither_read_nor_delete(
    acl_redis: AclRedis,
) -> None:
    capture = acl_redis.client("capture")
    assert capture.xadd("framebus:frames:cam0", {"jpeg": b"x"}, maxlen=8, approximate=False)
    assert capture.xadd("framebus:results:cam0", {"score": b"1"})
    assert capture.zadd("framebus:registry", {"cam0": 1.0}) == 1
    assert capture.zremrangebyscore("framebus:registry", "-inf", "(0") == 0  # pruning idle cameras
    assert capture.exists("framebus:demand:cam0") == 0  # capture on demand
    assert capture.ping()

    assert refused(lambda: capture.xrange("framebus:frames:cam0"))
    assert refused(lambda: capture.xread({"framebus:frames:cam0": "0-0"}))
    assert refused(lambda: capture.xrevrange("framebus:frames:cam0", count=1))
    assert refused(lambda: capture.zrange("framebus:registry", 0, -1))
    assert refused(lambda: capture.set("framebus:demand:cam0", "1"))
    assert refused(lambda: capture.delete("framebus:frames:cam0"))
    assert refused(lambda: capture.xtrim("framebus:frames:cam0", maxlen=0))
    assert refused(lambda: capture.flushall())
    assert refused(lambda: capture.xadd("other:key", {"a": b"1"}))  # only framebus:frames:* / results:*
    assert acl_redis.client("admin").xlen("framebus:frames:cam0") == 1  # nothing was removed


async def test_the_viewer_and_gateway_users_may_state_a_pace_and_capture_may_read_it(
    acl_redis: AclRedis,
) -> None:
    # The viewer cannot keep up at 40 fps; then the gateway keeps up (0 beats any pace).
    for user, pace in (("viewer", 40.0), ("gateway", 0.0)):
        client = aioredis.Redis.from_url(acl_redis.url(user), socket_timeout=2)
        try:
            await DemandSignal(client).refresh(["cam0"], {"cam0": pace})
        finally:
            await client.aclose()
        assert parse_pace(acl_redis.client("capture").get("framebus:demand:cam0")) == pace, user


def test_the_viewer_redis_user_may_read_but_not_write(acl_redis: AclRedis) -> None:
    acl_redis.client("capture").xadd("framebus:frames:cam0", {"jpeg": b"x"})
    acl_redis.client("capture").zadd("framebus:registry", {"cam0": 1.0})
    viewer = acl_redis.client("viewer")
    assert len(viewer.xrevrange("framebus:frames:cam0", count=1) or []) == 1
    assert viewer.xread({"framebus:frames:cam0": "0-0"}, count=1)
    assert viewer.zrange("framebus:registry", 0, -1) == [b"cam0"]
    assert viewer.set("framebus:demand:cam0", "1", px=3000)  # it may say a camera is watched

    assert refused(lambda: viewer.xadd("framebus:frames:cam0", {"jpeg": b"y"}))
    assert refused(lambda: viewer.zadd("framebus:registry", {"cam9": 1.0}))
    assert refused(lambda: viewer.delete("framebus:frames:cam0"))
    assert refused(lambda: viewer.set("framebus:x", "1"))
    assert refused(lambda: viewer.flushdb())
    assert refused(lambda: viewer.keys("*"))


def test_the_gateway_user_may_append_frames_and_only_admin_may_flush(acl_redis: AclRedis) -> None:
    gateway = acl_redis.client("gateway")
    assert gateway.xadd("framebus:frames:cam0", {"jpeg": b"x"})
    assert gateway.xadd("framebus:results:cam0", {"result": b"{}"})  # results posted over HTTP
    assert len(gateway.xrevrange("framebus:frames:cam0", count=1) or []) == 1
    assert refused(lambda: gateway.delete("framebus:frames:cam0"))
    assert refused(lambda: gateway.flushall())
    anonymous = redis.Redis(port=acl_redis.port, socket_timeout=2)
    assert anonymous.ping()
    assert refused(lambda: anonymous.xrevrange("framebus:frames:cam0", count=1))
    admin = acl_redis.client("admin")
    assert admin.flushall()
    assert admin.dbsize() == 0


def test_the_rendered_acl_file_holds_hashes_only_and_is_private(acl_redis: AclRedis) -> None:
    text = acl_redis.acl_file.read_text()
    for password in ACL_PASSWORDS.values():
        assert password not in text
    assert text.count("#") >= 4 and "@CAPTURE_HASH@" not in text
    assert acl_redis.acl_file.stat().st_mode & 0o077 == 0


def test_the_acl_starter_refuses_a_weak_password_naming_the_variable(tmp_path: Path) -> None:
    weak = {**ACL_PASSWORDS, "REDIS_VIEWER_PASSWORD": "short"}
    proc, _ = start_acl_redis(tmp_path, weak)
    assert proc.wait(timeout=10) == 2
    said = (tmp_path / "start.log").read_text()
    assert (
        "REDIS_VIEWER_PASSWORD must be at least 16 characters" in said
        and "short" not in said.split(":", 1)[1]
    )
    assert not (tmp_path / "users.acl").exists()


def test_capture_and_viewer_run_as_their_own_redis_users(
    acl_redis: AclRedis, start_service: ServiceFactory
) -> None:
    small = {"CAPTURE_WIDTH": "320", "CAPTURE_HEIGHT": "240", "CAPTURE_FPS": "10", "LOG_LEVEL": "DEBUG"}
    # REDIS_URL (shared) points nowhere useful: each service's own variable must win.
    shared = {"TRANSPORT": "redis", "REDIS_URL": "redis://127.0.0.1:1/0"}
    capture = start_service("capture", {**shared, **small, "CAPTURE_REDIS_URL": acl_redis.url("capture")})
    viewer = start_service("viewer", {**shared, "VIEWER_REDIS_URL": acl_redis.url("viewer")})
    viewer.wait_ready(timeout=20)
    capture.wait_ready(timeout=10)
    for service in (capture, viewer):
        said = service.log_text() + call(service.url, "GET", "/readyz").text
        assert "NOPERM" not in said, service.log_tail()
        for password in ACL_PASSWORDS.values():
            assert password not in said


# --- the token examples in docs/protocol.md, run as written ----------------------------------------

TOKEN_EXAMPLE = re.compile(r"<!-- token-example: ([a-z]+) -->\s*```[a-z]+\n(.*?)```", re.DOTALL)
EXAMPLE_FILES = {"curl": "example.sh", "node": "token-example.mjs", "java": "TokenExample.java"}
EXAMPLE_COMMANDS = {
    "curl": ["bash", "-euo", "pipefail", "example.sh"],
    "node": ["node", "--experimental-websocket", "token-example.mjs"],
    "java": ["java", "TokenExample.java"],
}


def token_examples() -> dict[str, str]:
    return dict(TOKEN_EXAMPLE.findall((REPO_ROOT / "docs" / "protocol.md").read_text()))


def test_the_protocol_doc_shows_a_token_example_for_curl_node_and_java() -> None:
    assert set(token_examples()) == set(EXAMPLE_FILES)


@pytest.mark.parametrize("language", sorted(EXAMPLE_FILES))
def test_each_token_example_in_the_protocol_doc_works_as_written(
    system: System, tmp_path: Path, language: str
) -> None:
    (tmp_path / EXAMPLE_FILES[language]).write_text(token_examples()[language])
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "GATEWAY_URL": system.gateway.url,
        "FRAMEBUS_TOKEN": token("read:cam0", "publish:cam9"),
    }
    result = subprocess.run(
        EXAMPLE_COMMANDS[language], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90
    )
    assert result.returncode == 0, result.stdout + result.stderr
    said = result.stdout
    if language == "curl":
        assert said.strip().endswith("401") and (tmp_path / "latest.jpg").read_bytes()[:2] == b"\xff\xd8"
    elif language == "node":
        assert "cameras cam0" in said and '"camera":"cam0"' in said
        assert "cam9" not in said.split("\n")[0]  # read:cam0 lists cam0 only
    else:
        assert said.startswith("status 200,")
