"""Each compose CLI that is installed accepts every variant (v1.29's schema is the older one)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.engine.stack import DOCKER, ROOT

VARIANTS = {
    "default": [],
    "rtsp-demo": ["--profile", "rtsp-demo"],
    "cameras": ["-f", "docker-compose.yml", "-f", "docker-compose.cameras.yml"],
    "replicas": ["-f", "docker-compose.yml", "-f", "docker-compose.replicas.yml"],
}


def _cli(version: str) -> list[str]:
    if version == "v1":
        found = shutil.which("docker-compose")
        if not found:
            pytest.skip("docker-compose (v1) is not installed")
        return [found]
    if subprocess.run([DOCKER, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip(f"`{DOCKER} compose` (v2) is not installed: Compose v2 is not verified here")
    return [DOCKER, "compose"]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_compose_cli_accepts_the_variant(version: str, variant: str) -> None:
    result = subprocess.run(
        [*_cli(version), *VARIANTS[variant], "config", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_compose_v1_rejects_a_misspelt_key(tmp_path: Path) -> None:
    """The check above really checks: v1.29 refuses an unknown key (as it refused `name:`)."""
    cli = _cli("v1")
    text = (ROOT / "docker-compose.yml").read_text()
    (tmp_path / "docker-compose.yml").write_text(text.replace("    healthcheck:", "    healthchek:", 1))
    (tmp_path / ".env").write_text((ROOT / ".env").read_text())
    result = subprocess.run(
        [*cli, "config", "--quiet"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and "healthchek" in result.stderr
