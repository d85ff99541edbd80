"""600x600 rendering: geometry, reduced decoding, output, bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from services.viewer.render import Placement, Renderer, decode_scale, fit, no_signal_jpeg


def jpeg_of(width: int, height: int) -> bytes:
    image = np.random.default_rng(1).integers(0, 255, (height, width, 3), dtype=np.uint8)
    ok, encoded = cv2.imencode(".jpg", image)
    assert ok
    return encoded.tobytes()


def decoded_shape(jpeg: bytes) -> tuple[int, ...]:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a decodable JPEG"
    return tuple(image.shape)


def test_letterbox_keeps_the_aspect_ratio_centred() -> None:
    assert fit(1280, 720, 600, 600, "letterbox") == Placement(600, 338, 0, 131)
    assert fit(480, 640, 600, 600, "letterbox") == Placement(450, 600, 75, 0)


def test_stretch_fills_the_output() -> None:
    assert fit(1920, 1080, 600, 600, "stretch") == Placement(600, 600, 0, 0)


@pytest.mark.parametrize(
    ("width", "height", "mode", "policy", "scale"),
    [
        (1280, 720, "letterbox", "auto", 2),  # 640x360 still covers 600x338
        (1920, 1080, "letterbox", "auto", 2),  # 960x540 covers it; 480x270 would not
        (3840, 2160, "letterbox", "auto", 4),
        (1280, 720, "stretch", "auto", 1),  # 360 rows cannot fill 600 without upscaling
        (1280, 720, "letterbox", "never", 1),
        (1280, 720, "stretch", "always", 2),
    ],
)
def test_decode_scale_reduces_only_while_the_result_still_covers_the_output(
    width: int, height: int, mode: str, policy: str, scale: int
) -> None:
    assert decode_scale(width, height, fit(width, height, 600, 600, mode), policy) == scale


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (640, 480), (1920, 1080), (300, 200)])
def test_renderer_outputs_a_600x600_jpeg(width: int, height: int) -> None:
    rendered = Renderer(600, 600, "letterbox", 80, "auto").render(jpeg_of(width, height), width, height)
    assert rendered is not None
    output, timings = rendered
    assert decoded_shape(output) == (600, 600, 3)
    assert timings.decode > 0 and timings.encode > 0


def test_renderer_copes_with_metadata_that_lies_about_the_size() -> None:
    rendered = Renderer(600, 600, "letterbox", 80, "auto").render(jpeg_of(640, 480), 4000, 3000)
    assert rendered is not None
    assert decoded_shape(rendered[0]) == (600, 600, 3)


def test_renderer_returns_none_for_bytes_that_do_not_decode() -> None:
    assert Renderer(600, 600, "letterbox", 80, "auto").render(b"\xff\xd8\xff" + b"\0" * 500, 640, 480) is None


def test_no_signal_card_is_a_600x600_jpeg() -> None:
    assert decoded_shape(no_signal_jpeg(600, 600, "cam0", "x")) == (600, 600, 3)
