"""tests.support.children: a service child process never inherits framebus settings by accident."""

from __future__ import annotations

import pytest

from tests.support.children import REPO_ROOT, service_env, setting_env_names


def test_inherited_settings_are_dropped_and_explicit_ones_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSPORT", "http")
    monkeypatch.setenv("REDIS_URL", "redis://elsewhere:6379/0")
    monkeypatch.setenv("UNRELATED_VARIABLE", "kept")
    env = service_env("VIEWER_PORT", 18000, {"REDIS_URL": "redis://127.0.0.1:1/0", "LOG_LEVEL": None})
    assert "TRANSPORT" not in env
    assert env["REDIS_URL"] == "redis://127.0.0.1:1/0"
    assert env["UNRELATED_VARIABLE"] == "kept"
    assert (env["VIEWER_PORT"], env["BIND_HOST"], env["PYTHONUNBUFFERED"]) == ("18000", "127.0.0.1", "1")
    assert env["PYTHONPATH"].split(":")[0] == str(REPO_ROOT)
    assert "LOG_LEVEL" not in env


def test_setting_names_cover_every_service() -> None:
    assert {"TRANSPORT", "CAPTURE_SOURCE", "GATEWAY_TOKEN", "VIEWER_PORT", "LOG_LEVEL"} <= setting_env_names()
