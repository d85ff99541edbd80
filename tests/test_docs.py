"""The docs stay in step with the code."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

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


def exported_metric_names() -> set[str]:
    """Every framebus sample name the three services can export (they register on import)."""
    for module in ("services.capture.app", "services.gateway.app", "services.viewer.app"):
        importlib.import_module(module)

    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
    return {
        family.name + suffix
        for family in REGISTRY.collect()
        if family.name.startswith("framebus_")
        for suffix in suffixes.get(family.type, [""])
    }


def test_alert_rules_name_only_metrics_the_services_export() -> None:
    rules = yaml.safe_load((ROOT / "docs/alerts.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    named = {name for expr in exprs for name in re.findall(r"framebus_[a-z_]+", expr)}
    assert named, "no framebus metric in the alert rules"
    assert not named - exported_metric_names(), "alerts use metrics nobody exports"


def test_alert_rules_pass_promtool_check_and_unit_tests() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: scripts/setup.sh installs Debian's prometheus package"
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts-test.yml"]):
        result = subprocess.run([promtool, *args], cwd=ROOT / "docs", capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_operations_doc_names_every_exported_metric() -> None:
    doc = (ROOT / "docs/operations.md").read_text()
    families = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in exported_metric_names()}
    missing = sorted(name for name in families if name not in doc)
    assert not missing, f"docs/operations.md does not describe: {', '.join(missing)}"
