"""tests.support.procfile reads a Procfile as honcho does and splits off leading assignments."""

from __future__ import annotations

from pathlib import Path

from tests.support.procfile import python_module, read_procfile


def test_processes_with_their_environment_and_module(tmp_path: Path) -> None:
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        "# comment\n"
        "web: exec python -m services.viewer\n"
        "cam1: CAMERA_ID=cam1 CAPTURE_PORT=8082 exec python -m services.capture --flag\n"
    )
    processes = read_procfile(procfile)
    assert list(processes) == ["web", "cam1"]
    assert processes["web"].env == {}
    assert processes["web"].module == "services.viewer"
    assert processes["cam1"].env == {"CAMERA_ID": "cam1", "CAPTURE_PORT": "8082"}
    assert processes["cam1"].argv == ["python", "-m", "services.capture", "--flag"]


def test_python_module_reads_m_from_a_list_or_a_string() -> None:
    assert python_module("python -m services.gateway") == "services.gateway"
    assert python_module(["python", "script.py"]) is None
    assert python_module(["python", "-m"]) is None
