"""The viewer page in a real headless Chromium, against a running redis + capture + viewer.

Debian's /usr/bin/chromium is driven by Playwright's Python package (never `playwright install`:
it cannot download browsers here). A missing browser or package FAILS these tests, it does not
skip them. Screenshots are saved under the test's tmp_path and copied to SCREENSHOT_DIR, whose
path is printed (``pytest -rP`` or ``-s`` shows it).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.processes import ServiceProcess
from tests.fixtures.servers import RedisServer

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
SCREENSHOT_DIR = Path(
    os.environ.get("FRAMEBUS_SCREENSHOT_DIR", Path(tempfile.gettempdir()) / "framebus-browser")
)
UI_TIMEOUT_MS = 15_000

Start = Callable[..., ServiceProcess]


@pytest.fixture
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: run `make setup` (pip install -e '.[test]')", pytrace=False)
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} not found: run `scripts/setup.sh test` as root (apt-get install chromium)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Error as exc:
            pytest.fail(f"Chromium at {CHROMIUM} did not start: {exc}", pytrace=False)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def system(start_service: Start, redis_server: RedisServer) -> dict[str, ServiceProcess]:
    """capture (synthetic, 10 fps) -> Redis -> viewer, which also pins a camera that never sends."""
    capture = start_service(
        "capture",
        {"REDIS_URL": redis_server.url, "CAPTURE_FPS": "10", "CAPTURE_WIDTH": "640", "CAPTURE_HEIGHT": "360"},
    )
    viewer = start_service(
        "viewer",
        {"REDIS_URL": redis_server.url, "VIEWER_CAMERAS": "cam1", "FRAME_STALE_SECONDS": "1.5"},
    )
    viewer.wait_ready()
    return {"capture": capture, "viewer": viewer}


def save_screenshot(page: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    copy = shutil.copy(path, SCREENSHOT_DIR / name)
    print(f"screenshot: {copy}")
    return path


def natural_size(page: Any, selector: str) -> tuple[int, int]:
    """Size of the picture the browser decoded (waits until it has painted one)."""
    handle = page.wait_for_function(
        """(sel) => { const img = document.querySelector(sel);
                      return img && img.naturalWidth > 0 && [img.naturalWidth, img.naturalHeight]; }""",
        arg=selector,
    )
    width, height = handle.json_value()
    return int(width), int(height)


def picture_changes(page: Any, selector: str, timeout: float) -> bool:
    """True once a screenshot of the element differs from the first one."""
    first = page.locator(selector).screenshot()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page.wait_for_timeout(250)
        if page.locator(selector).screenshot() != first:
            return True
    return False


def number_in(page: Any, selector: str) -> float:
    text = page.locator(selector).text_content() or ""
    return float(text.split()[0]) if text[:1].isdigit() else 0.0


def test_page_plays_the_live_600x600_stream_and_updates_its_figures(
    system: dict[str, ServiceProcess], page: Any, tmp_path: Path
) -> None:
    page.goto(system["viewer"].url + "/")

    assert natural_size(page, "#stream") == (600, 600)
    assert picture_changes(page, "#stream", timeout=5.0), "the picture did not change in 5 s"

    page.wait_for_function("parseFloat(document.getElementById('fps').textContent) > 0")
    first_seq = page.locator("#seq").text_content()
    page.wait_for_function("(seq) => document.getElementById('seq').textContent !== seq", arg=first_seq)
    assert number_in(page, "#fps") > 0
    assert page.locator("#p50").text_content().endswith(" ms")
    assert page.locator("#p99").text_content().endswith(" ms")
    assert page.locator("#age").text_content().endswith(" s")
    assert page.locator("#dropped").text_content().isdigit()
    assert page.locator("#transport").text_content() == "redis"
    assert page.locator("#pill").text_content() == "live · cam0"
    assert page.locator("#pill").get_attribute("aria-live") == "polite"
    assert "cam0" in (page.locator("#stream").get_attribute("alt") or "")
    assert page.locator("#badge").is_hidden()
    options = page.locator("#camera option").all_text_contents()
    assert options == ["cam0", "cam1"]
    save_screenshot(page, tmp_path, "viewer-live.png")


def test_grid_view_shows_every_camera_scaled_with_its_own_state(
    system: dict[str, ServiceProcess], page: Any, tmp_path: Path
) -> None:
    page.goto(system["viewer"].url + "/?view=grid")

    tiles = page.locator("#tiles .tile")
    page.wait_for_function("document.querySelectorAll('#tiles .tile').length === 2")
    assert tiles.locator(".tile-name").all_text_contents() == ["cam0", "cam1"]
    assert natural_size(page, "#tiles .tile:nth-child(1) img") == (600, 600)
    # cam1 never sent a frame: its tile still paints the viewer's "no signal" card at once.
    assert natural_size(page, "#tiles .tile:nth-child(2) img") == (600, 600)
    page.wait_for_function(
        "document.querySelector('#tiles .tile:nth-child(1) .tile-state').textContent.startsWith('live')"
    )
    assert tiles.nth(1).locator(".tile-state").text_content() == "no signal"
    assert tiles.nth(1).locator(".badge").is_visible()
    assert tiles.nth(0).locator(".badge").is_hidden()
    assert picture_changes(page, "#tiles .tile:nth-child(1) img", timeout=5.0)
    box = tiles.nth(0).locator("img").bounding_box()
    assert box is not None and box["width"] < 600 and abs(box["width"] - box["height"]) < 1
    assert page.locator("#single").is_hidden()
    save_screenshot(page, tmp_path, "viewer-grid.png")


def test_page_shows_no_signal_when_the_capture_stops(
    system: dict[str, ServiceProcess], page: Any, tmp_path: Path
) -> None:
    page.goto(system["viewer"].url + "/")
    page.wait_for_function("document.getElementById('pill').textContent.startsWith('live')")

    code, _ = system["capture"].terminate()
    assert code == 0

    page.wait_for_function("document.getElementById('pill').textContent === 'no signal · cam0'")
    assert page.locator("#badge").is_visible()
    assert "no signal" in (page.locator("#signal").text_content() or "")
    page.wait_for_function("parseFloat(document.getElementById('fps').textContent) === 0")
    assert natural_size(page, "#stream") == (600, 600)
    save_screenshot(page, tmp_path, "viewer-no-signal.png")


def test_phone_sized_screen_stacks_the_picture_above_the_figures(
    system: dict[str, ServiceProcess], browser: Any, tmp_path: Path
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    try:
        page = context.new_page()
        page.goto(system["viewer"].url + "/")
        assert natural_size(page, "#stream") == (600, 600)
        picture = page.locator("#stream").bounding_box()
        figures = page.locator("#figures").bounding_box()
        assert picture is not None and figures is not None
        assert picture["width"] <= 390 and figures["y"] >= picture["y"] + picture["height"]
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= 390, "the page scrolls sideways on a phone"
        save_screenshot(page, tmp_path, "viewer-phone.png")
    finally:
        context.close()
