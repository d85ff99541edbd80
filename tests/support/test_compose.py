"""tests.support.compose follows compose's own rules for interpolation, .env and override merge."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.compose import (
    ComposeError,
    duration_seconds,
    interpolate,
    load_compose,
    merge,
    parse_port,
    read_dotenv,
    service_env,
)


def test_interpolation_follows_compose_rules() -> None:
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET}/$SET/$$SET", env) == "x/x/$SET"
    assert interpolate("${EMPTY:-d} ${EMPTY-d} ${UNSET-d} ${UNSET:-d}", env) == "d  d d"
    assert interpolate("${UNSET:-${SET}-y}", env) == "x-y"
    assert interpolate("${SET:+alt}|${EMPTY:+alt}|${EMPTY+alt}", env) == "alt||alt"
    assert interpolate("${SET:?boom}", env) == "x"
    with pytest.raises(ComposeError, match="EMPTY: boom"):
        interpolate("${EMPTY:?boom}", env)
    with pytest.raises(ComposeError, match="UNSET"):
        interpolate("${UNSET}", env)
    with pytest.raises(ComposeError):
        interpolate("${SET", env)


def test_dotenv_reads_quotes_export_and_comments_and_refuses_a_bad_line(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("# comment\nA=1 # trailing\nexport B='x # y'\nC=\"q r\"\n")
    assert read_dotenv(dotenv) == {"A": "1", "B": "x # y", "C": "q r"}
    dotenv.write_text("A=1\nnot a binding\n")
    with pytest.raises(ComposeError, match="not KEY=VALUE"):
        read_dotenv(dotenv)
    assert read_dotenv(tmp_path / "missing.env") == {}


def test_override_merges_mappings_appends_lists_and_replaces_commands() -> None:
    base = {"environment": {"A": "1"}, "ports": ["1:1"], "command": ["a", "b"]}
    over = {"environment": {"B": "2"}, "ports": ["1:1", "2:2"], "command": ["c"]}
    assert merge(base, over) == {
        "environment": {"A": "1", "B": "2"},
        "ports": ["1:1", "2:2"],
        "command": ["c"],
    }


def test_load_compose_merges_files_normalizes_and_selects_profiles(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TAG=dev\n")
    (tmp_path / "base.yml").write_text(
        "services:\n"
        "  app:\n    image: app:${TAG}\n    environment: [A=1, B]\n    depends_on: [db]\n"
        "  db:\n    image: db\n"
        "  demo:\n    image: demo\n    profiles: [demo]\n"
    )
    (tmp_path / "over.yml").write_text("services:\n  app:\n    environment:\n      C: 'yes'\n")
    config = load_compose(tmp_path, ("base.yml", "over.yml"), shell={"TAG": "shell"})
    app = config["services"]["app"]
    assert app["image"] == "app:shell"  # the shell wins over .env
    assert service_env(app) == {"A": "1", "C": "yes"}  # B (no value) is passed through unset
    assert app["depends_on"] == {"db": {"condition": "service_started"}}
    assert set(config["services"]) == {"app", "db"}
    assert "demo" in load_compose(tmp_path, ("base.yml",), profiles=("demo",))["services"]


@pytest.mark.parametrize(
    ("entry", "parsed"),
    [
        ("8000", (None, None, 8000)),
        ("8000:80", (None, 8000, 80)),
        ("127.0.0.1:8000:80/tcp", ("127.0.0.1", 8000, 80)),
        ("[::1]:8000:80", ("::1", 8000, 80)),
        ({"target": 80, "published": "8000", "host_ip": "127.0.0.1"}, ("127.0.0.1", 8000, 80)),
    ],
)
def test_ports_in_short_and_long_syntax(entry: str | dict[str, object], parsed: tuple[object, ...]) -> None:
    assert parse_port(entry) == parsed


def test_durations_in_compose_units() -> None:
    assert duration_seconds("1m30s") == 90
    assert duration_seconds("500ms") == 0.5
    with pytest.raises(ValueError, match="not a duration"):
        duration_seconds("soon")
