"""`docker compose -f docker-compose.yml -f docker-compose.replicas.yml up`: two gateway replicas
behind HAProxy (the `lb` service, built from docker/haproxy), sharing frames through the Redis
backplane. Run with TRANSPORT=http so that capture and viewer really go through the balancer.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from shared.tokens import mint
from shared.wire import FrameMeta, to_headers
from shared.wire_ws import from_ws_message
from tests.engine.stack import ROOT, Stack, docker, http_get, read_token
from tests.fixtures import wait_until
from tests.fixtures.frames import jpeg_frame
from tests.support.compose import read_dotenv

FILES = ("docker-compose.yml", "docker-compose.replicas.yml")
SERVICES = {"redis", "gateway", "gateway2", "lb", "capture", "viewer"}
REPLICAS = {"gateway": "GATEWAY_PORT", "gateway2": "GATEWAY2_PORT"}  # -> its direct host port
PROBE_CAMERA = "replica-probe"
PROBE_FRAMES = 12


@pytest.fixture(scope="module")
def stack(make_stack: Callable[..., Stack]) -> Stack:
    # scripts/compose_test.sh builds docker-compose.yml's image only; the balancer's image is
    # (re)built here from docker/haproxy (cached after the first run).
    Stack(project="framebus-lb-build", files=FILES).compose("build", "lb", timeout=600)
    return make_stack("replicas", files=FILES, env={"TRANSPORT": "http"})


def _secret() -> str:
    return read_dotenv(ROOT / ".env")["FRAMEBUS_AUTH_SECRET"]


def publish_token() -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(_secret(), ['publish:*'], 600, subject='compose-test')}"}


def lb_states(stack: Stack) -> dict[str, dict[str, str]]:
    """Each replica's row of HAProxy's stats CSV (status UP/DOWN, scur = current sessions)."""
    answer = http_get(stack.url("LB_STATUS_PORT", "/stats;csv"))
    assert answer.status == 200, f"lb /stats;csv: {answer.status}"
    rows = csv.DictReader(io.StringIO(answer.body.decode().lstrip("# ")))
    return {row["svname"]: row for row in rows if row["pxname"] == "gateways" and row["svname"] in REPLICAS}


def post_frame(url: str, camera: str, seq: int) -> int:
    now = time.time_ns()
    headers = {
        "Content-Type": "image/jpeg",
        **publish_token(),
        **to_headers(FrameMeta(camera, seq, now, now, 64, 48)),
    }
    request = urllib.request.Request(
        f"{url}/cameras/{camera}/frames", data=jpeg_frame(seq), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


async def _subscribe(url: str, seqs: list[int], connected: asyncio.Event) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(url, headers=read_token()) as ws:
        connected.set()
        async for message in ws:
            if message.type == aiohttp.WSMsgType.BINARY:
                meta, jpeg = from_ws_message(message.data)
                assert meta.camera == PROBE_CAMERA and jpeg.startswith(b"\xff\xd8")
                seqs.append(meta.seq)


async def _post_while_subscribed(stack: Stack, subscribers: dict[str, str]) -> dict[str, list[int]]:
    """Opens a WebSocket per entry, then POSTs PROBE_FRAMES frames through the balancer."""
    received: dict[str, list[int]] = {name: [] for name in subscribers}
    events = {name: asyncio.Event() for name in subscribers}
    tasks = [
        asyncio.create_task(_subscribe(url, received[name], events[name]))
        for name, url in subscribers.items()
    ]
    try:
        async with asyncio.timeout(20):
            await asyncio.gather(*(event.wait() for event in events.values()))
        await asyncio.sleep(0.5)  # each replica's backplane reader starts on its first subscriber
        for seq in range(1, PROBE_FRAMES + 1):
            status = await asyncio.to_thread(post_frame, stack.url("LB_PORT", ""), PROBE_CAMERA, seq)
            assert status == 204, f"POST through the balancer: {status}"
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
    finally:
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result
    return received


def test_the_override_is_valid_for_the_compose_cli(stack: Stack) -> None:
    """docker-compose 1.29 (or v2) accepts the two files together (no top-level `name:`)."""
    stack.compose("config", "--quiet")


def test_every_service_turns_healthy_and_the_lb_sees_both_replicas_up(stack: Stack) -> None:
    health = {
        service: status for service, status in stack.health().items() if service not in stack.one_shots_done()
    }
    assert health == dict.fromkeys(SERVICES, "healthy")
    both_up = dict.fromkeys(REPLICAS, "UP")
    wait_until(
        lambda: {name: row["status"] for name, row in lb_states(stack).items()} == both_up,
        timeout=10, interval=0.3, message=lambda: f"lb states: {lb_states(stack)}",
    )  # fmt: skip
    assert http_get(stack.url("LB_PORT", "/readyz")).status == 200
    for port_name in REPLICAS.values():
        assert http_get(stack.url(port_name, "/readyz")).status == 200


def _proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


def test_the_lb_runs_haproxy_unprivileged(stack: Stack) -> None:
    info = stack.inspect("lb")
    assert info["Config"]["User"] not in ("", "root", "0")
    assert info["HostConfig"]["CapDrop"] == ["ALL"] and not info["HostConfig"]["CapAdd"]
    assert "no-new-privileges:true" in info["HostConfig"]["SecurityOpt"]
    init_pid = int(info["State"]["Pid"])
    children = Path(f"/proc/{init_pid}/task/{init_pid}/children").read_text().split()
    assert len(children) == 1, f"lb: docker-init has children {children}"
    status = _proc_status(int(children[0]))
    assert status["Name"] == "haproxy"
    assert "0" not in status["Uid"].split(), f"haproxy runs as uid {status['Uid']}"
    assert int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0


def test_a_frame_posted_through_the_lb_reaches_subscribers_on_every_replica(stack: Stack) -> None:
    """Round-robin spreads the POSTs over both replicas, yet a subscriber on either replica (or
    through the balancer) sees more than its replica's share: the backplane carries the rest."""
    path = f"/cameras/{PROBE_CAMERA}/ws"
    subscribers = {"lb": stack.url("LB_PORT", path)} | {
        name: stack.url(port_name, path) for name, port_name in REPLICAS.items()
    }
    received = asyncio.run(_post_while_subscribed(stack, subscribers))
    own_share = PROBE_FRAMES // 2
    for name, seqs in received.items():
        assert set(seqs) <= set(range(1, PROBE_FRAMES + 1)), f"{name}: seqs {seqs} were never posted"
        assert len(set(seqs)) > own_share, f"{name} got {sorted(set(seqs))} of {PROBE_FRAMES} frames"
    latest = http_get(stack.url("LB_PORT", f"/cameras/{PROBE_CAMERA}/latest.jpg"), headers=read_token())
    assert latest.status == 200 and latest.body.startswith(b"\xff\xd8")


def test_the_viewer_shows_moving_video_through_the_lb(stack: Stack) -> None:
    stack.assert_video_moves("cam0")
    assert stack.stats("cam0")["transport"] == "http"


def test_a_killed_replica_is_taken_out_and_frames_keep_flowing(stack: Stack) -> None:
    """`docker kill` the replica carrying the most sessions (the viewer's WebSocket): the lb
    marks it DOWN, capture's POSTs and the viewer's socket move to the other replica."""
    stack.assert_video_moves("cam0")
    states = lb_states(stack)
    victim = max(REPLICAS, key=lambda name: int(states[name]["scur"] or 0))
    assert int(states[victim]["scur"] or 0) >= 1, f"no replica carries a session: {states}"
    survivor = next(name for name in REPLICAS if name != victim)
    seq_at_kill = stack.snapshot_seq("cam0")
    killed_at = time.monotonic()
    docker("kill", stack.containers()[victim])

    wait_until(
        lambda: lb_states(stack)[victim]["status"].startswith("DOWN"), timeout=5, interval=0.1,
        message=lambda: f"the lb does not report {victim} down: {lb_states(stack)[victim]['status']}",
    )  # fmt: skip
    down_after = time.monotonic() - killed_at
    wait_until(
        lambda: stack.snapshot_seq("cam0") >= seq_at_kill + 10, timeout=10, interval=0.2,
        message=lambda: f"frames stopped at {seq_at_kill}:\n{stack.logs('viewer', 'capture', 'lb', tail=15)}",
    )  # fmt: skip
    flowing_after = time.monotonic() - killed_at
    print(
        f"{victim} killed: the lb reported it DOWN after {down_after:.1f} s;"
        f" the viewer had 10 new frames after {flowing_after:.1f} s"
    )
    assert lb_states(stack)[survivor]["status"] == "UP"
    assert stack.health()["lb"] == "healthy"
    assert not stack.inspect(victim)["State"]["Running"]

    stack.compose("start", victim)
    wait_until(
        lambda: lb_states(stack)[victim]["status"] == "UP", timeout=60, interval=0.3,
        message=lambda: f"{victim} not back: {lb_states(stack)[victim]}\n{stack.logs(victim, 'lb')}",
    )  # fmt: skip
    stack.assert_video_moves("cam0")


def test_the_lb_and_the_second_replica_stop_within_their_grace_period(stack: Stack) -> None:
    """HAProxy ends on SIGTERM at once (stop_grace_period 5 s); no SIGKILL after the grace."""
    started = time.monotonic()
    stack.compose("stop", "lb", "gateway2")
    elapsed = time.monotonic() - started
    exits = {service: int(stack.inspect(service)["State"]["ExitCode"]) for service in ("lb", "gateway2")}
    assert 137 not in exits.values(), f"SIGKILLed after the grace period: {exits}"
    assert elapsed < 5, f"stopping lb and gateway2 took {elapsed:.1f} s"
