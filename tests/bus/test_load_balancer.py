"""Gateway replicas behind a real HAProxy that health-checks /readyz (no sticky sessions)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from services.gateway.settings import GatewaySettings
from shared.wire import HEADER_SEQ
from shared.wire_ws import from_ws_message
from tests.fixtures import wait_until
from tests.fixtures.haproxy import HaproxyProcess, haproxy_binary
from tests.fixtures.processes import ServiceProcess
from tests.fixtures.servers import RedisServer
from tests.support.net import http_get
from tests.support.observe import decode, live_snapshot, scrape

Start = Callable[..., ServiceProcess]
StartHaproxy = Callable[..., HaproxyProcess]

LIGHT_CAMERA = {"CAPTURE_WIDTH": "640", "CAPTURE_HEIGHT": "360", "CAPTURE_FPS": "10"}


def latest_seq_through(proxy: HaproxyProcess, camera: str = "cam0") -> int | None:
    """The seq of ``latest.jpg`` as answered through the load balancer (None unless 200)."""
    try:
        status, body, headers = _get_with_headers(f"{proxy.url}/cameras/{camera}/latest.jpg")
    except OSError:
        return None
    if status != 200:
        return None
    assert decode(body).shape == (360, 640, 3)
    return int(headers[HEADER_SEQ.lower()])


def _get_with_headers(url: str) -> tuple[int, bytes, dict[str, str]]:
    """GET returning status, body and headers with lower-case names (HAProxy sends them so)."""
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:
            status, body, headers = int(response.status), response.read(), response.headers
    except urllib.error.HTTPError as exc:
        with exc:
            status, body, headers = int(exc.code), exc.read(), exc.headers
    return status, body, {name.lower(): value for name, value in headers.items()}


def fresh_frames_through(proxy: HaproxyProcess, after_seq: int, requests: int = 4) -> bool:
    """``requests`` consecutive latest.jpg answers through the LB, all 200, all newer than ``after_seq``."""
    for _ in range(requests):
        seq = latest_seq_through(proxy)
        if seq is None or seq <= after_seq:
            return False
    return True


def received(gateway: ServiceProcess) -> float:
    return gateway.metric("framebus_frames_received_total", {"camera": "cam0", "transport": "http"}) or 0.0


def subscribers(gateway: ServiceProcess) -> float:
    return gateway.metric("framebus_subscribers", {"camera": "cam0"}) or 0.0


def test_load_balancer_spreads_frames_and_moves_traffic_off_a_killed_replica(
    start_service: Start, start_haproxy: StartHaproxy
) -> None:
    gateways = [start_service("gateway") for _ in range(2)]
    proxy = start_haproxy([("127.0.0.1", gateway.port) for gateway in gateways])
    proxy.wait_states({"gw1": "UP", "gw2": "UP"})
    capture = start_service("capture", {"TRANSPORT": "http", "GATEWAY_URL": proxy.url, **LIGHT_CAMERA})
    viewer = start_service("viewer", {"TRANSPORT": "http", "GATEWAY_URL": proxy.url})

    # No sticky sessions: the producer's keep-alive connection is balanced request by request.
    wait_until(lambda: all(received(gateway) >= 5 for gateway in gateways), timeout=15)
    wait_until(lambda: fresh_frames_through(proxy, 0), timeout=10)
    live_snapshot(viewer)
    capture.wait_ready()

    # Kill the replica that carries the viewer's WebSocket, so both the producer and the
    # subscriber have to move.
    victim = wait_until(lambda: next((g for g in gateways if subscribers(g) >= 1), None), timeout=10)
    assert victim is not None
    survivor = next(g for g in gateways if g is not victim)
    seq_at_kill = latest_seq_through(proxy) or 0
    viewer_seq_at_kill = live_snapshot(viewer)[0]
    survivor_received_at_kill = received(survivor)
    victim.kill()
    killed_at = time.monotonic()

    wait_until(lambda: fresh_frames_through(proxy, seq_at_kill), timeout=5)
    producer_moved_after = time.monotonic() - killed_at
    wait_until(
        lambda: live_snapshot(viewer)[0] >= viewer_seq_at_kill + 10, timeout=10, message=viewer.log_tail
    )
    subscriber_moved_after = time.monotonic() - killed_at
    print(f"latest.jpg fresh after {producer_moved_after:.1f}s, viewer after {subscriber_moved_after:.1f}s")

    victim_name = HaproxyProcess.server_name(gateways.index(victim))
    proxy.wait_states({victim_name: "DOWN"}, timeout=5)
    # Every frame since goes to the survivor, and it now carries the viewer.
    before = received(survivor)
    wait_until(lambda: received(survivor) >= before + 10, timeout=5)
    assert received(survivor) > survivor_received_at_kill
    assert subscribers(survivor) >= 1
    viewer.wait_ready(timeout=5)
    capture.wait_ready(timeout=5)
    # A frame caught in flight by the kill is counted by the capture, never lost silently:
    # every frame read is published or dropped with a reason (a couple may still be in flight).
    samples = scrape(capture)
    captured = samples.get(("framebus_frames_captured_total", (("camera", "cam0"),)), 0.0)
    published = samples.get(
        ("framebus_frames_published_total", (("camera", "cam0"), ("transport", "http"))), 0.0
    )
    dropped = {
        labels: value for (name, labels), value in samples.items() if name == "framebus_frames_dropped_total"
    }
    print(f"capture: {captured:.0f} read, {published:.0f} published, dropped {dropped}")
    assert 0 <= captured - published - sum(dropped.values()) <= 3


def test_a_stopped_replica_is_taken_out_by_the_readiness_check(
    start_service: Start, start_haproxy: StartHaproxy
) -> None:
    """HAProxy follows /readyz, not just the TCP port: a frozen replica (SIGSTOP: port open,
    nothing answers) is marked DOWN and requests go to the other one."""
    gateways = [start_service("gateway") for _ in range(2)]
    proxy = start_haproxy([("127.0.0.1", gateway.port) for gateway in gateways])
    proxy.wait_states({"gw1": "UP", "gw2": "UP"})
    gateways[0].send_signal(signal.SIGSTOP)
    try:
        proxy.wait_states({"gw1": "DOWN", "gw2": "UP"}, timeout=5)
        statuses = [http_get(f"{proxy.url}/cameras", timeout=2.0)[0] for _ in range(6)]
        assert statuses == [200] * 6
    finally:
        gateways[0].send_signal(signal.SIGCONT)
    proxy.wait_states({"gw1": "UP"}, timeout=5)


backplane_missing = "gateway_backplane" not in GatewaySettings.model_fields


@pytest.mark.skipif(backplane_missing, reason="needs GATEWAY_BACKPLANE=redis (issue 10), not built yet")
def test_a_producer_on_one_replica_reaches_a_subscriber_on_another(
    redis_server: RedisServer, start_service: Start, start_haproxy: StartHaproxy
) -> None:
    """With the Redis backplane, replicas share frames: POSTs to replica A reach a WebSocket on
    replica B with the producer's own seqs, in order, none twice; and through the LB too."""
    env = {"GATEWAY_BACKPLANE": "redis", "REDIS_URL": redis_server.url}
    replica_a, replica_b = (start_service("gateway", env) for _ in range(2))
    proxy = start_haproxy([("127.0.0.1", replica_a.port), ("127.0.0.1", replica_b.port)])
    proxy.wait_states({"gw1": "UP", "gw2": "UP"})
    start_service("capture", {"TRANSPORT": "http", "GATEWAY_URL": replica_a.url, **LIGHT_CAMERA})

    seqs_on_b = asyncio.run(_websocket_seqs(f"{replica_b.url}/cameras/cam0/ws", 20))
    assert seqs_on_b == sorted(set(seqs_on_b)), f"out of order or repeated: {seqs_on_b}"
    seqs_via_lb = asyncio.run(_websocket_seqs(f"{proxy.url}/cameras/cam0/ws", 10))
    assert seqs_via_lb == sorted(set(seqs_via_lb))
    assert fresh_frames_through(proxy, 0)
    assert received(replica_b) == 0, "replica B got frames over HTTP; the test means to use the backplane"


def viewer_gap(viewer: ServiceProcess) -> float:
    labels = {"camera": "cam0", "stage": "receive", "reason": "upstream_gap"}
    return viewer.metric("framebus_frames_dropped_total", labels) or 0.0


@pytest.mark.skipif(backplane_missing, reason="needs GATEWAY_BACKPLANE=redis (issue 10), not built yet")
def test_with_the_backplane_a_killed_replica_costs_only_a_counted_gap(
    redis_server: RedisServer, start_service: Start, start_haproxy: StartHaproxy
) -> None:
    """Producer and viewer both go through the LB to replicas sharing frames through Redis: the
    viewer sees the whole stream (not one replica's share); when the replica carrying its
    WebSocket is killed, both move within a few seconds and the missing seqs are counted."""
    env = {"GATEWAY_BACKPLANE": "redis", "REDIS_URL": redis_server.url}
    gateways = [start_service("gateway", env) for _ in range(2)]
    proxy = start_haproxy([("127.0.0.1", gateway.port) for gateway in gateways])
    proxy.wait_states({"gw1": "UP", "gw2": "UP"})
    start_service("capture", {"TRANSPORT": "http", "GATEWAY_URL": proxy.url, **LIGHT_CAMERA})
    viewer = start_service("viewer", {"TRANSPORT": "http", "GATEWAY_URL": proxy.url})
    first_seq, first_gap = live_snapshot(viewer)[0], viewer_gap(viewer)
    wait_until(lambda: live_snapshot(viewer)[0] >= first_seq + 40, timeout=10)
    # Round-robin POSTs land on both replicas, yet the viewer on one of them sees the whole
    # stream; without the backplane it would miss every other frame (a gap of ~20 here).
    assert viewer_gap(viewer) - first_gap < 10, "the viewer saw only its replica's share of the frames"

    victim = wait_until(lambda: next((g for g in gateways if subscribers(g) >= 1), None), timeout=10)
    assert victim is not None
    gap_before, seq_at_kill = viewer_gap(viewer), live_snapshot(viewer)[0]
    victim.kill()
    wait_until(lambda: live_snapshot(viewer)[0] >= seq_at_kill + 10, timeout=5, message=viewer.log_tail)
    assert viewer_gap(viewer) > gap_before, "the frames missed while moving were not counted"
    viewer.wait_ready(timeout=5)


async def _websocket_seqs(url: str, count: int) -> list[int]:
    seqs: list[int] = []
    async with asyncio.timeout(20), aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        while len(seqs) < count:
            message = await ws.receive()
            if message.type == aiohttp.WSMsgType.BINARY:
                meta, _ = from_ws_message(message.data)
                seqs.append(meta.seq)
    return seqs


EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "haproxy" / "haproxy.cfg"


def directives(config: str, sections: tuple[str, ...] = ("defaults", "backend")) -> set[str]:
    """The directive lines of the named sections, without comments and server lines."""
    found: set[str] = set()
    current = ""
    for raw in config.splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if line and not line[0].isspace():
            current = line.split()[0]
        elif line and current in sections and line.split()[0] != "server":
            found.add(" ".join(line.split()))
    return found


def test_the_example_haproxy_config_is_valid_and_matches_the_tested_one(tmp_path: Path) -> None:
    example = EXAMPLE_CONFIG.read_text()
    tested = HaproxyProcess(tmp_path, [("127.0.0.1", 1), ("127.0.0.1", 2)]).config_text()
    assert "http-check send meth GET uri /readyz" in directives(example)
    assert directives(example) == directives(tested), (
        "deploy/haproxy/haproxy.cfg and the test fixture drifted"
    )
    # Valid as HAProxy reads it, with the compose host names pointed at this host.
    runnable = example.replace("gateway1:8080", "127.0.0.1:1").replace("gateway2:8080", "127.0.0.1:2")
    runnable = runnable.replace("/run/haproxy-framebus.sock", str(tmp_path / "stats.sock"))
    (tmp_path / "example.cfg").write_text(runnable)
    check = subprocess.run(
        [haproxy_binary(), "-c", "-f", str(tmp_path / "example.cfg")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
