"""The docs stay in step with the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.capture.settings import CaptureSettings
from services.gateway.settings import GatewaySettings
from services.viewer.settings import ViewerSettings
from shared.settings import env_names

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("settings_cls", [CaptureSettings, GatewaySettings, ViewerSettings])
def test_readme_documents_every_environment_variable(settings_cls: type) -> None:
    readme = (ROOT / "README.md").read_text()
    missing = sorted(name for name in env_names(settings_cls) if f"`{name}`" not in readme)
    assert not missing, f"README.md does not document: {', '.join(missing)}"


def test_readme_opens_with_the_two_commands() -> None:
    head = "\n".join((ROOT / "README.md").read_text().splitlines()[:12])
    assert "docker compose up" in head and "make test" in head
