"""`docker compose --profile rtsp-demo up`: GStreamer's RTSP server in a container, captured live."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.engine.stack import Stack


@pytest.fixture(scope="module")
def stack(make_stack: Callable[..., Stack]) -> Stack:
    return make_stack("rtsp", profiles=("rtsp-demo",))


def test_the_profile_adds_the_rtsp_camera_and_its_capture(stack: Stack) -> None:
    states = stack.health()
    assert states.get("rtsp-publisher") == "running"
    assert states.get("capture-rtsp") == "healthy"


def test_the_rtsp_camera_is_live_in_the_viewer(stack: Stack) -> None:
    stack.assert_video_moves("rtsp-demo", timeout=60)
