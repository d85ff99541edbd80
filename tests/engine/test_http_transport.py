"""`TRANSPORT=http docker compose up`: the same stack, frames through the gateway."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.engine.stack import Stack, http_get, read_token


@pytest.fixture(scope="module")
def stack(make_stack: Callable[..., Stack]) -> Stack:
    return make_stack("http", env={"TRANSPORT": "http"})


def test_every_service_turns_healthy_over_http(stack: Stack) -> None:
    done = stack.one_shots_done()  # viewer-link printed its page link and exited
    states = {name: state for name, state in stack.health().items() if name not in done}
    assert states == dict.fromkeys(("redis", "gateway", "capture", "viewer"), "healthy")
    for port in ("GATEWAY_PORT", "CAPTURE_PORT", "VIEWER_PORT"):
        assert http_get(stack.url(port, "/readyz")).status == 200, port


def test_video_moves_over_http(stack: Stack) -> None:
    stack.assert_video_moves("cam0")
    assert stack.stats("cam0")["transport"] == "http"
    cameras = http_get(stack.url("GATEWAY_PORT", "/cameras"), headers=read_token()).json()
    assert "cam0" in str(cameras), f"the gateway does not list cam0: {cameras}"
