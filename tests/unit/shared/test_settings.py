"""Settings: an invalid value names its variable; a service's own variable wins over the shared one."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.capture.settings import CaptureSettings
from services.viewer.settings import ViewerSettings
from shared.settings import describe_settings_error, env_names


def test_settings_error_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JPEG_QUALITY", "101")
    with pytest.raises(ValidationError) as caught:
        CaptureSettings()
    line = describe_settings_error(caught.value, CaptureSettings)
    assert line.startswith("invalid setting JPEG_QUALITY:")
    assert "\n" not in line


def test_service_override_wins_over_shared_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSPORT", "http")
    monkeypatch.setenv("VIEWER_TRANSPORT", "redis")
    assert ViewerSettings().transport == "redis"
    assert CaptureSettings().transport == "http"
    assert {"TRANSPORT", "CAPTURE_TRANSPORT", "CAPTURE_SOURCE", "REDIS_URL"} <= env_names(CaptureSettings)
