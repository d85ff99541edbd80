"""The viewer's renderer reads the JPEG's own header before decoding: a bomb is never decoded,
and the decode is planned from the real size, not from metadata that lies."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from services.viewer.render import Renderer
from tests.fixtures.bombs import jpeg_bomb, small_jpeg


def renderer() -> Renderer:
    return Renderer(600, 600, "letterbox", 80, "auto")


@pytest.mark.parametrize(
    ("width", "height", "progressive"),
    [(8000, 6000, False), (4000, 4000, True)],  # just over the baseline and progressive limits
)
def test_renderer_refuses_a_frame_over_the_pixel_limits_without_decoding_it(
    width: int, height: int, progressive: bool
) -> None:
    bomb = jpeg_bomb(width, height, progressive=progressive)
    # Declared as a harmless size: the header, not the metadata, decides.
    assert renderer().render(bomb, 64, 48) is None


def test_renderer_plans_the_decode_from_the_real_size_not_the_declared_one() -> None:
    image = np.random.default_rng(4).integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    # Declared tiny: trusting it would decode at full size; the header says 1/2 scale covers 600x338.
    rendered = renderer().render(jpeg, 16, 16)
    assert rendered is not None
    assert np.asarray(cv2.imdecode(np.frombuffer(rendered[0], np.uint8), cv2.IMREAD_COLOR)).shape == (
        600,
        600,
        3,
    )


def test_a_small_progressive_grey_frame_still_renders() -> None:
    rendered = renderer().render(small_jpeg(progressive=True, grey=True, width=320, height=240))
    assert rendered is not None
