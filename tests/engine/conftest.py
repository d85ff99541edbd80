"""Fixtures for the Docker engine tests (run by `make compose-test` only, see scripts/compose_test.sh).

The image and the base images are built before pytest starts; here each test module brings up
its own compose project (unique name, free host ports) and always takes it down again.
Timings (time to healthy per stack, and the build figures scripts/compose_test.sh passes in
COMPOSE_TEST_TIMINGS) are printed before pytest's summary line.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.engine.stack import DOCKER, Stack, docker

PROJECT_PREFIX = os.environ.get("COMPOSE_TEST_PROJECT_PREFIX", f"fbtest{os.getpid()}")
STARTED = float(os.environ.get("COMPOSE_TEST_STARTED", time.time()))
_healthy_after: list[tuple[str, float]] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    """Fail at once, with the reason, when no engine answers (rather than once per test)."""
    docker("version", "--format", "{{.Server.Version}}", timeout=20)


@pytest.fixture(scope="module")
def make_stack(request: pytest.FixtureRequest) -> Iterator[Callable[..., Stack]]:
    """Factory: ``make_stack(name, files=..., profiles=..., env=...)`` brings a stack up (healthy)."""
    stacks: list[Stack] = []

    def start(name: str, **kwargs: Any) -> Stack:
        stack = Stack(project=f"{PROJECT_PREFIX}{name}", **kwargs)
        stacks.append(stack)  # before up(): a stack that never turns healthy is still taken down
        stack.up()
        assert stack.seconds_to_healthy is not None
        _healthy_after.append((name, stack.seconds_to_healthy))
        return stack

    yield start
    for stack in stacks:
        stack.down()
        leftovers = docker(
            "ps", "--all", "--quiet", "--filter", f"label=com.docker.compose.project={stack.project}"
        )
        assert not leftovers.strip(), f"{stack.project}: containers left after down: {leftovers.split()}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines = [item for item in os.environ.get("COMPOSE_TEST_TIMINGS", "").split(";") if item]
    lines += [f"{name} stack: healthy {seconds:.1f} s after `up -d`" for name, seconds in _healthy_after]
    if not lines:
        return
    terminalreporter.section("compose-test timings")
    for line in lines:
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"compose-test so far: {time.time() - STARTED:.0f} s (docker CLI: {DOCKER})")
