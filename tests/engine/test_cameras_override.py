"""`docker compose -f docker-compose.yml -f docker-compose.cameras.yml up`: a second camera."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.engine.stack import Stack, http_get, read_token


@pytest.fixture(scope="module")
def stack(make_stack: Callable[..., Stack]) -> Stack:
    return make_stack("cameras", files=("docker-compose.yml", "docker-compose.cameras.yml"))


def test_the_override_adds_a_healthy_capture_on_its_own_host_port(stack: Stack) -> None:
    assert stack.health().get("capture-cam1") == "healthy"
    assert http_get(stack.url("CAPTURE1_PORT", "/readyz")).status == 200


def test_the_viewer_shows_both_cameras_moving(stack: Stack) -> None:
    stack.assert_video_moves("cam1")
    stack.assert_video_moves("cam0")
    listed = {
        entry["camera"]
        for entry in http_get(stack.url("VIEWER_PORT", "/api/cameras"), headers=read_token()).json()[
            "cameras"
        ]
    }
    assert {"cam0", "cam1"} <= listed
