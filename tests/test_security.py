"""Security: authenticated ingest, secrets kept out of every output, loopback by default, TLS to
Redis, and camera ids validated wherever they enter."""

from __future__ import annotations

import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest
import redis

from tests.fixtures import ServiceFactory, ServiceProcess, wait_until
from tests.fixtures.frames import GOOD_JPEG, frame_headers, post, rejected, viewer_seq
from tests.fixtures.servers import RedisServer, TlsFiles

TOKEN = "tok-9f3c1e77-secret"
REDIS_PASSWORD = "s3cret-redis-pw"
WRONG_PASSWORD = "wr0ng-redis-pw"


def everything_said(service: ServiceProcess) -> str:
    """Log, readiness body and metrics of a service: where a secret must never show up."""
    _, readiness = service.get("/readyz")
    _, metrics = service.get("/metrics")
    return "\n".join([service.log_text(), readiness.decode(), metrics.decode()])


def assert_secrets_absent(services: list[ServiceProcess], *secrets: str) -> None:
    for service in services:
        said = everything_said(service)
        for secret in secrets:
            assert secret not in said, f"{secret!r} leaked by {service.name}"


# --- ingest authentication --------------------------------------------------------------------


def test_gateway_with_a_token_refuses_posts_without_the_right_bearer_token(
    start_service: ServiceFactory,
) -> None:
    gateway = start_service("gateway", {"GATEWAY_TOKEN": TOKEN})
    before = rejected(gateway, "unauthorized")
    status, text = post(gateway, "cam0", GOOD_JPEG, frame_headers(1))
    assert status == 401 and "token" in text
    status, _ = post(gateway, "cam0", GOOD_JPEG, {**frame_headers(2), "Authorization": "Bearer nope"})
    assert status == 401
    status, _ = post(gateway, "cam0", GOOD_JPEG, {**frame_headers(3), "Authorization": TOKEN})
    assert status == 401  # the scheme is part of what is compared
    assert rejected(gateway, "unauthorized") == before + 3
    assert gateway.get("/cameras/cam0/latest.jpg")[0] == 404  # nothing got in

    status, _ = post(gateway, "cam0", GOOD_JPEG, {**frame_headers(4), "Authorization": f"Bearer {TOKEN}"})
    assert status == 204
    assert "GATEWAY_TOKEN is not set" not in gateway.log_text()


def test_capture_with_the_token_delivers_and_a_wrong_token_is_reported_not_leaked(
    start_service: ServiceFactory,
) -> None:
    gateway = start_service("gateway", {"GATEWAY_TOKEN": TOKEN})
    common = {
        "GATEWAY_URL": gateway.url,
        "TRANSPORT": "http",
        "CAPTURE_WIDTH": "320",
        "CAPTURE_HEIGHT": "240",
    }
    good = start_service("capture", {**common, "GATEWAY_TOKEN": TOKEN})
    good.wait_ready()
    wait_until(lambda: gateway.get("/cameras/cam0/latest.jpg")[0] == 200, timeout=5)

    bad = start_service("capture", {**common, "GATEWAY_TOKEN": "not-" + TOKEN, "CAMERA_ID": "cam1"})
    wait_until(lambda: "401" in bad.get_json("/readyz")[1]["checks"]["http"]["detail"], timeout=10)
    assert bad.get("/readyz")[0] == 503
    dropped = {"camera": "cam1", "stage": "http", "reason": "rejected"}
    wait_until(lambda: (bad.metric("framebus_frames_dropped_total", dropped) or 0) > 0, timeout=5)
    assert_secrets_absent([gateway, good, bad], TOKEN)


def test_gateway_without_a_token_warns_at_start_that_ingest_is_open(start_service: ServiceFactory) -> None:
    gateway = start_service("gateway", {"GATEWAY_TOKEN": None})
    wait_until(lambda: "GATEWAY_TOKEN is not set" in gateway.log_text(), timeout=5)
    assert "WARNING" in next(line for line in gateway.log_text().splitlines() if "GATEWAY_TOKEN" in line)


# --- secrets in Redis URLs --------------------------------------------------------------------


def test_redis_password_never_appears_in_logs_readiness_or_metrics(
    tmp_path: Path, start_service: ServiceFactory
) -> None:
    server = RedisServer(tmp_path / "redis", password=REDIS_PASSWORD).start()
    try:
        small = {"CAPTURE_WIDTH": "320", "CAPTURE_HEIGHT": "240"}
        common = {"REDIS_URL": server.url, "TRANSPORT": "redis", "LOG_LEVEL": "DEBUG", **small}
        capture = start_service("capture", common)
        viewer = start_service("viewer", common)
        viewer.wait_ready()

        wrong_url = server.url.replace(REDIS_PASSWORD, WRONG_PASSWORD)
        wrong = {**common, "REDIS_URL": wrong_url, "CAMERA_ID": "cam1"}
        wrong_capture = start_service("capture", wrong)
        wrong_viewer = start_service("viewer", wrong)
        for service in (wrong_capture, wrong_viewer):
            wait_until(lambda s=service: s.get("/readyz")[0] == 503 and "redis" in s.log_text(), timeout=10)  # type: ignore[misc]
            wait_until(lambda s=service: "WRONGPASS" in s.log_text() or "invalid" in s.log_text(), timeout=10)  # type: ignore[misc]
        assert_secrets_absent([capture, viewer, wrong_capture, wrong_viewer], REDIS_PASSWORD, WRONG_PASSWORD)
    finally:
        server.kill()


# --- listening address ------------------------------------------------------------------------


def listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp) with a socket in LISTEN state on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.rsplit(":", 1)
                if state == "0A" and int(hex_port, 16) == port:
                    found.add(address)
    return found


@pytest.mark.parametrize("name", ["gateway", "capture", "viewer"])
def test_services_listen_on_loopback_only_by_default(name: str, start_service: ServiceFactory) -> None:
    service = start_service(name, {"BIND_HOST": None})  # the fixture sets it; the default is tested
    assert listening_addresses(service.port) == {"0100007F"}  # 127.0.0.1


def test_bind_host_opens_the_service_to_all_interfaces_when_asked(start_service: ServiceFactory) -> None:
    # The counterpart of the default: proves the address check above can tell them apart.
    gateway = start_service("gateway", {"BIND_HOST": "0.0.0.0"})
    assert listening_addresses(gateway.port) == {"00000000"}


# --- TLS to Redis -----------------------------------------------------------------------------


def self_signed_certificate(directory: Path) -> TlsFiles:
    files = TlsFiles(directory / "redis.crt", directory / "redis.key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(files.key), "-out", str(files.cert),
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return files


def test_capture_and_viewer_work_over_rediss_tls(tmp_path: Path, start_service: ServiceFactory) -> None:
    """Two recipes: trust the server's certificate as a CA (verified), or skip verification."""
    tls = self_signed_certificate(tmp_path)
    server = RedisServer(tmp_path / "redis", tls=tls).start()
    try:
        verified = f"{server.url}?ssl_ca_certs={urllib.parse.quote(str(tls.cert))}"
        unverified = f"{server.url}?ssl_cert_reqs=none&ssl_check_hostname=false"
        capture = start_service(
            "capture", {"REDIS_URL": unverified, "CAPTURE_WIDTH": "320", "CAPTURE_HEIGHT": "240"}
        )
        viewer = start_service("viewer", {"REDIS_URL": verified})
        capture.wait_ready()
        viewer.wait_ready()
        seq = viewer_seq(viewer)
        wait_until(lambda: viewer_seq(viewer) > seq + 10, timeout=10)
        # Plain redis:// to a TLS-only port does not work: the frames above really went over TLS.
        plain = redis.Redis(port=server.port, socket_timeout=2)
        with pytest.raises(redis.ConnectionError):
            plain.ping()
        plain.close()
    finally:
        server.kill()


# --- camera ids at every entry point ----------------------------------------------------------

HOSTILE = "<script>alert(1)</script>"
HOSTILE_SEGMENT = "<img src=x onerror=alert(1)>"  # no "/", so it stays one path segment


def test_camera_ids_are_validated_at_every_entry_point_and_never_echoed(
    redis_server: RedisServer, start_service: ServiceFactory
) -> None:
    gateway = start_service("gateway")
    viewer = start_service("viewer", {"REDIS_URL": redis_server.url, "VIEWER_DISCOVERY_SECONDS": "0.5"})
    query = urllib.parse.quote(HOSTILE)
    for path in ("/stream.mjpg", "/snapshot.jpg", "/api/stats"):
        status, body = viewer.get(f"{path}?camera={query}")
        assert status == 400, path
        assert b"<script>" not in body
    segment = urllib.parse.quote(HOSTILE_SEGMENT)
    for path in ("latest.jpg", "ws"):
        status, body = gateway.get(f"/cameras/{segment}/{path}")
        assert status == 400, path
        assert b"<img" not in body
    status, page = viewer.get(f"/?camera={query}")
    assert status == 200 and b"<script>alert" not in page

    # A hostile id planted in Redis is refused by discovery, counted, and never listed.
    client = redis.Redis.from_url(redis_server.url)
    client.zadd("framebus:registry", {HOSTILE: time.time(), "cam7": time.time()})
    labels = {"transport": "redis", "reason": "bad_camera"}
    wait_until(lambda: (viewer.metric("framebus_malformed_frames_total", labels) or 0) > 0, timeout=5)
    wait_until(lambda: "cam7" in str(viewer.get_json("/api/cameras")[1]), timeout=5)
    assert "script" not in str(viewer.get_json("/api/cameras")[1])
    client.close()


def test_viewer_page_inserts_server_data_as_text_never_as_html() -> None:
    static = Path(__file__).resolve().parents[1] / "services" / "viewer" / "static"
    script = (static / "viewer.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"):
        assert sink not in script, f"viewer.js uses {sink}"
