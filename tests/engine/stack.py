"""A compose project driven the way a user drives it: the compose CLI, docker inspect, HTTP.

One ``Stack`` is one ``docker compose -p <project> [-f ...] [--profile ...]`` on free host
ports; ``down()`` removes its containers, networks and volumes whatever happened before.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.tokens import mint
from tests.fixtures import free_port, wait_until
from tests.support.compose import read_dotenv

ROOT = Path(__file__).resolve().parents[2]
DOCKER = os.environ.get("DOCKER", "docker")


def compose_command() -> list[str]:
    """`docker compose` (v2) when the CLI has it, else Debian's `docker-compose` (v1.29)."""
    if override := os.environ.get("COMPOSE_CMD"):
        return override.split()
    probe = subprocess.run([DOCKER, "compose", "version"], capture_output=True, text=True)
    if probe.returncode == 0:
        return [DOCKER, "compose"]
    found = shutil.which("docker-compose")
    assert found, "neither `docker compose` nor `docker-compose` is installed"
    return [found]


def docker(*args: str, timeout: float = 60) -> str:
    result = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr.strip()}"
    return result.stdout


@dataclass
class HttpAnswer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def read_token() -> dict[str, str]:
    """A read token for every camera, signed with the secret compose takes from .env (auth is on)."""
    dotenv = read_dotenv(ROOT / ".env")
    secret = os.environ.get("FRAMEBUS_AUTH_SECRET") or dotenv["FRAMEBUS_AUTH_SECRET"]
    return {"Authorization": f"Bearer {mint(secret, ['read:*'], 600, subject='compose-test')}"}


def http_get(url: str, timeout: float = 3, headers: Mapping[str, str] | None = None) -> HttpAnswer:
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return HttpAnswer(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as exc:
        return HttpAnswer(exc.code, dict(exc.headers), exc.read())


@dataclass
class Stack:
    project: str
    files: Sequence[str] = ("docker-compose.yml",)
    profiles: Sequence[str] = ()
    env: dict[str, str] = field(default_factory=dict)
    # host ports, picked free so that the stack never collides with `make run` or tests
    ports: dict[str, int] = field(default_factory=dict)
    seconds_to_healthy: float | None = None

    def __post_init__(self) -> None:
        for name in (
            "VIEWER_PORT", "GATEWAY_PORT", "CAPTURE_PORT", "CAPTURE1_PORT", "RTSP_DEMO_PORT",
            "GATEWAY2_PORT", "LB_PORT", "LB_STATUS_PORT",  # docker-compose.replicas.yml
        ):  # fmt: skip
            self.ports.setdefault(name, free_port())

    # ---- the compose CLI ------------------------------------------------------------------

    def compose(
        self, *args: str, timeout: float = 180, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        argv = [*compose_command(), "-p", self.project]
        for name in self.files:
            argv += ["-f", name]
        for profile in self.profiles:
            argv += ["--profile", profile]
        env = {**os.environ, **self.env, **{name: str(port) for name, port in self.ports.items()}}
        result = subprocess.run(
            [*argv, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
        if check:
            assert result.returncode == 0, f"{' '.join(argv + list(args))} failed:\n{result.stderr[-3000:]}"
        return result

    def up(self, timeout: float = 120) -> None:
        """`docker compose up -d`, then wait until every container reports healthy."""
        started = time.monotonic()
        self.compose("up", "-d")
        self.wait_healthy(timeout)
        self.seconds_to_healthy = time.monotonic() - started

    def down(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "10", check=False)

    def logs(self, *services: str, tail: int = 40) -> str:
        return self.compose("logs", "--no-color", "--tail", str(tail), *services, check=False).stdout

    # ---- containers -------------------------------------------------------------------------

    def containers(self) -> dict[str, str]:
        """service name -> container id, for every container of the project (running or not)."""
        out = docker(
            "ps", "--all", "--filter", f"label=com.docker.compose.project={self.project}",
            "--format", '{{.ID}} {{.Label "com.docker.compose.service"}}',
        )  # fmt: skip
        pairs = (line.split() for line in out.splitlines() if line.strip())
        return {service: cid for cid, service in pairs}

    def inspect(self, service: str) -> dict[str, Any]:
        (info,) = json.loads(docker("inspect", self.containers()[service]))
        return dict(info)

    def health(self) -> dict[str, str]:
        """service -> health status (or the state, for a container without a healthcheck)."""
        states = {}
        for service in self.containers():
            state = self.inspect(service)["State"]
            states[service] = state["Health"]["Status"] if state.get("Health") else state["Status"]
        return states

    def one_shots_done(self) -> set[str]:
        """Services with `restart: "no"` (viewer-link) whose container exited with status 0."""
        done = set()
        for service in self.containers():
            info = self.inspect(service)
            state, policy = info["State"], info["HostConfig"]["RestartPolicy"]["Name"]
            if policy in ("", "no") and state["Status"] == "exited" and state["ExitCode"] == 0:
                done.add(service)
        return done

    def wait_healthy(self, timeout: float) -> None:
        def all_healthy() -> bool:
            done = self.one_shots_done()
            states = {service: status for service, status in self.health().items() if service not in done}
            return (
                bool(states)
                and all(status in ("healthy", "running") for status in states.values())
                and any(status == "healthy" for status in states.values())
            )

        wait_until(
            all_healthy, timeout=timeout, interval=0.5,
            message=lambda: f"not healthy: {self.health()}\n{self.logs()}",
        )  # fmt: skip

    # ---- HTTP on the published ports -----------------------------------------------------------

    def url(self, port_name: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[port_name]}{path}"

    def snapshot_seq(self, camera: str) -> int:
        answer = http_get(self.url("VIEWER_PORT", f"/snapshot.jpg?camera={camera}"), headers=read_token())
        assert answer.status == 200, f"/snapshot.jpg?camera={camera}: {answer.status}"
        assert answer.body.startswith(b"\xff\xd8"), "the snapshot is not a JPEG"
        return int(answer.headers["X-Frame-Seq"])

    def stats(self, camera: str) -> dict[str, Any]:
        answer = http_get(self.url("VIEWER_PORT", f"/api/stats?camera={camera}"), headers=read_token())
        assert answer.status == 200, f"/api/stats?camera={camera}: {answer.status} {answer.body[:200]!r}"
        return dict(answer.json())

    def assert_video_moves(self, camera: str, timeout: float = 30) -> None:
        """The viewer's snapshot sequence number increases and it counts frames per second."""
        wait_until(
            lambda: self.stats(camera).get("live"), timeout=timeout, interval=0.5,
            message=lambda: f"{camera} is not live: {self.stats(camera)}\n{self.logs()}",
        )  # fmt: skip
        first = self.snapshot_seq(camera)
        wait_until(
            lambda: self.snapshot_seq(camera) > first, timeout=10, interval=0.2,
            message=f"{camera}: X-Frame-Seq stays at {first}",
        )  # fmt: skip
        wait_until(
            lambda: self.stats(camera)["fps"] > 0, timeout=10, interval=0.5,
            message=lambda: f"{camera}: fps is not > 0: {self.stats(camera)}",
        )  # fmt: skip
