"""`docker compose --profile algorithm up`: the example algorithm's boxes reach the viewer."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.engine.stack import Stack, http_get, read_token
from tests.fixtures import wait_until


@pytest.fixture(scope="module")
def stack(make_stack: Callable[..., Stack]) -> Stack:
    return make_stack("algorithm", profiles=("algorithm",))


def test_the_algorithm_runs_and_its_results_are_shown_with_the_video(stack: Stack) -> None:
    assert stack.health().get("algorithm") == "running"
    stack.assert_video_moves("cam0")

    def matching_result() -> bool:
        answer = http_get(stack.url("VIEWER_PORT", "/api/results?camera=cam0"), headers=read_token())
        body = answer.json() if answer.status == 200 else {}
        return bool(body.get("result") and body.get("matches"))

    wait_until(
        matching_result, timeout=60, interval=0.5,
        message=lambda: f"no result drawn over cam0\n{stack.logs('algorithm', 'gateway')}",
    )  # fmt: skip
