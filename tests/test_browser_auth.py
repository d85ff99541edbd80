"""The viewer page with auth on, in a real headless Chromium (see tests/test_browser.py for the
browser set-up): a token link plays live video and leaves no token in the address bar; without
one the browser shows a clear "not authorised" page, never a broken image."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import test_browser
from tests.fixtures.processes import REPO_ROOT, ServiceProcess
from tests.fixtures.servers import RedisServer
from tests.test_browser import Start, natural_size, picture_changes, save_screenshot

pytestmark = pytest.mark.browser

# The browser fixtures of tests/test_browser.py, shared rather than copied.
browser = test_browser.browser
page = test_browser.page

SECRET = "browser-auth-secret-0123456789abcdefghij"


@pytest.fixture
def viewer(start_service: Start, redis_server: RedisServer) -> ServiceProcess:
    """capture (synthetic, 10 fps) -> Redis -> viewer with AUTH_SECRET set."""
    start_service(
        "capture",
        {"REDIS_URL": redis_server.url, "CAPTURE_FPS": "10", "CAPTURE_WIDTH": "640", "CAPTURE_HEIGHT": "360"},
    )
    viewer = start_service("viewer", {"REDIS_URL": redis_server.url, "AUTH_SECRET": SECRET})
    viewer.wait_ready()
    return viewer


def page_link(viewer: ServiceProcess, *scopes: str) -> str:
    """What an operator does: the mint command prints the page link."""
    args = [arg for scope in scopes for arg in ("--read", scope)]
    result = subprocess.run(
        [sys.executable, "-m", "framebus.token", *args, "--ttl", "1h", "--link", viewer.url + "/"],
        cwd=REPO_ROOT,
        env={"AUTH_SECRET": SECRET, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    return result.stdout.strip()


def test_a_token_link_plays_live_video_and_keeps_the_token_out_of_the_address_bar(
    viewer: ServiceProcess, page: Any, tmp_path: Path
) -> None:
    page.goto(page_link(viewer, "cam*"))

    assert "token" not in page.url
    assert natural_size(page, "#stream") == (600, 600)
    assert picture_changes(page, "#stream", timeout=5.0), "the picture did not change in 5 s"
    page.wait_for_function("document.getElementById('pill').textContent === 'live · cam0'")
    cookie = next(c for c in page.context.cookies() if c["name"] == "framebus_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert "framebus_token" not in page.evaluate("document.cookie")  # scripts cannot read it
    save_screenshot(page, tmp_path, "viewer-auth-live.png")


def test_without_a_token_the_browser_shows_a_clear_not_authorised_page(
    viewer: ServiceProcess, page: Any, tmp_path: Path
) -> None:
    response = page.goto(viewer.url + "/")

    assert response is not None and response.status == 401
    assert page.locator("h2").text_content() == "Not authorised"
    assert "python -m framebus.token" in (page.locator("main").text_content() or "")
    assert page.locator("img").count() == 0
    save_screenshot(page, tmp_path, "viewer-auth-denied.png")


def test_a_token_for_other_cameras_gets_a_notice_not_a_broken_image(
    viewer: ServiceProcess, page: Any, tmp_path: Path
) -> None:
    page.goto(page_link(viewer, "lobby*"))

    page.wait_for_selector("#denied:not([hidden])")
    assert "does not allow any camera" in (page.locator("#denied-reason").text_content() or "")
    assert page.locator("#pill").text_content() == "not authorised"
    assert page.locator("#single").is_hidden()
    assert page.locator("#stream").get_attribute("src") is None
    save_screenshot(page, tmp_path, "viewer-auth-other-cameras.png")
