"""`docker compose up` exactly as the README says (TRANSPORT=redis, the default), run for real."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.engine.stack import Stack, docker, http_get
from tests.fixtures import wait_until

SERVICES = {"redis", "gateway", "capture", "viewer"}
# framebus service -> the variable holding its published host port
FRAMEBUS_PORTS = {"gateway": "GATEWAY_PORT", "capture": "CAPTURE_PORT", "viewer": "VIEWER_PORT"}
GRACE_SECONDS = 5  # stop_grace_period of every service in docker-compose.yml
SIGKILLED = 137  # 128 + SIGKILL: what a container that outlived its grace period exits with


@pytest.fixture(scope="module")
def stack(make_stack: Callable[..., Stack]) -> Stack:
    return make_stack("default", env={"TRANSPORT": "redis"})


def test_every_service_turns_healthy(stack: Stack) -> None:
    done = stack.one_shots_done()  # viewer-link printed its page link and exited
    assert set(stack.containers()) - done == SERVICES
    assert {name: state for name, state in stack.health().items() if name not in done} == dict.fromkeys(
        SERVICES, "healthy"
    )


@pytest.mark.parametrize("service", sorted(FRAMEBUS_PORTS))
def test_readyz_answers_200_on_the_published_port(stack: Stack, service: str) -> None:
    answer = http_get(stack.url(FRAMEBUS_PORTS[service], "/readyz"))
    assert answer.status == 200, answer.body[:300]


def test_video_moves_over_redis(stack: Stack) -> None:
    stack.assert_video_moves("cam0")
    assert stack.stats("cam0")["transport"] == "redis"


def _process_tree(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *(grandchild for child in children for grandchild in _process_tree(int(child)))]


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


@pytest.mark.parametrize("service", sorted(FRAMEBUS_PORTS))
def test_runs_as_uid_10001_without_capabilities(stack: Stack, service: str) -> None:
    """What the container is told (inspect) and what its processes really have (/proc)."""
    info = stack.inspect(service)
    assert info["Config"]["User"] == "10001:10001"
    assert info["HostConfig"]["CapDrop"] == ["ALL"]
    assert not info["HostConfig"]["CapAdd"]
    assert "no-new-privileges:true" in info["HostConfig"]["SecurityOpt"]
    assert not info["HostConfig"]["Privileged"]
    pids = _process_tree(int(info["State"]["Pid"]))
    assert len(pids) >= 2, f"expected docker-init and the service, found pids {pids}"
    for pid in pids:
        status = _status(pid)
        assert set(status["Uid"].split()) == {"10001"}, (
            f"{service} pid {pid} ({status['Name']}): Uid {status['Uid']}"
        )
        assert set(status["Gid"].split()) == {"10001"}, f"{service} pid {pid}: Gid {status['Gid']}"
        for caps in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            assert int(status[caps], 16) == 0, (
                f"{service} pid {pid} ({status['Name']}): {caps} {status[caps]}"
            )
        assert status["NoNewPrivs"] == "1"


def _service_pid(stack: Stack, service: str) -> int:
    """The service's own process: the child of docker-init (init: true)."""
    init_pid = int(stack.inspect(service)["State"]["Pid"])
    children = Path(f"/proc/{init_pid}/task/{init_pid}/children").read_text().split()
    assert len(children) == 1, f"{service}: docker-init has children {children}"
    return int(children[0])


def test_a_crashed_capture_is_restarted_by_its_policy(stack: Stack) -> None:
    """The capture process dies by SIGKILL (an OOM kill, a crash): Docker starts it again."""
    before = stack.inspect("capture")
    crashed = _service_pid(stack, "capture")
    os.kill(crashed, signal.SIGKILL)
    wait_until(
        lambda: stack.inspect("capture")["RestartCount"] > before["RestartCount"], timeout=20, interval=0.2,
        message=lambda: f"capture was not restarted: {stack.inspect('capture')['State']}",
    )  # fmt: skip
    stack.wait_healthy(timeout=60)
    assert stack.inspect("capture")["State"]["StartedAt"] != before["State"]["StartedAt"]
    stack.assert_video_moves("cam0")


def test_docker_kill_is_an_operators_stop_and_start_resumes(stack: Stack) -> None:
    """`docker kill capture` counts as an operator's stop: no restart policy (not even `always`)
    brings it back (measured on Docker 20.10), so the test above kills the process instead."""
    container = stack.containers()["capture"]
    docker("kill", container)
    wait_until(lambda: not stack.inspect("capture")["State"]["Running"], timeout=10, interval=0.2)
    time.sleep(2)  # a restart policy would act within this time (its first delay is 100 ms)
    assert not stack.inspect("capture")["State"]["Running"]
    stack.compose("start", "capture")
    stack.wait_healthy(timeout=60)
    stack.assert_video_moves("cam0")


def _all_running_and_healthy(stack: Stack) -> None:
    """Start over from a whole, healthy stack, whatever an earlier test left stopped."""
    if not all(stack.inspect(service)["State"]["Running"] for service in SERVICES):
        stack.compose("start")
    stack.wait_healthy(timeout=60)


def _stop_and_time(stack: Stack, *services: str) -> tuple[float, dict[str, int]]:
    """`compose stop [services]`: seconds taken, and the exit code of each container it stopped."""
    stopped = services or tuple(SERVICES)
    before = {service: stack.inspect(service)["State"]["StartedAt"] for service in stopped}
    started = time.monotonic()
    stack.compose("stop", *services)
    elapsed = time.monotonic() - started
    exits = {}
    for service in stopped:
        state = stack.inspect(service)["State"]
        assert not state["Running"] and state["StartedAt"] == before[service], f"{service}: {state}"
        exits[service] = int(state["ExitCode"])
    return elapsed, exits


@pytest.mark.parametrize("cycle", range(4))
def test_capture_stops_on_sigterm_within_its_grace_period(stack: Stack, cycle: int) -> None:
    """Repeated, because a SIGTERM once went unheeded about one stop in six."""
    _all_running_and_healthy(stack)
    elapsed, exits = _stop_and_time(stack, "capture")
    assert exits["capture"] != SIGKILLED, (
        f"capture ignored SIGTERM and was killed after {elapsed:.1f} s; its last lines:\n"
        + stack.logs("capture", tail=15)
    )
    assert elapsed < GRACE_SECONDS, f"stopping capture took {elapsed:.1f} s"


def test_compose_stop_finishes_within_the_grace_period(stack: Stack) -> None:
    """The whole stack: two rounds of stops at most (capture and viewer, then redis and gateway)."""
    _all_running_and_healthy(stack)
    elapsed, exits = _stop_and_time(stack)
    killed = sorted(service for service, code in exits.items() if code == SIGKILLED)
    assert not killed, f"SIGKILLed after the grace period: {killed} (exit codes {exits})\n" + stack.logs(
        *killed, tail=15
    )
    assert elapsed < 2 * GRACE_SECONDS, f"`stop` took {elapsed:.1f} s (exit codes {exits})"
