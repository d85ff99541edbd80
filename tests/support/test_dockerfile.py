"""tests.support.dockerfile reads stages, continuations, global ARGs and both ENV forms."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.dockerfile import DockerfileError, parse_dockerfile

DOCKERFILE = """\
# syntax=docker/dockerfile:1
ARG BASE=python:3.11-slim
FROM ${BASE} AS builder
RUN apt-get update \\
    # a comment inside a continued line
    && apt-get install -y gcc
COPY pyproject.toml ./
COPY --chown=1:1 src ./src

FROM $BASE
ENV A=1 \\
    B="two words"
ENV LEGACY value with spaces
COPY --from=builder /opt/venv /opt/venv
CMD ["python", "-m", "app"]
"""


def test_stages_have_their_base_name_and_instructions(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(DOCKERFILE)
    builder, runtime = parse_dockerfile(path)
    assert (builder.base, builder.name) == ("python:3.11-slim", "builder")
    assert (runtime.base, runtime.name) == ("python:3.11-slim", None)
    assert builder.args("RUN") == ["apt-get update && apt-get install -y gcc"]
    assert builder.context_sources() == ["pyproject.toml", "src"]
    assert runtime.context_sources() == []
    assert runtime.env() == {"A": "1", "B": "two words", "LEGACY": "value with spaces"}
    assert runtime.args("CMD") == ['["python", "-m", "app"]']


@pytest.mark.parametrize(
    ("text", "error"), [("RUN true\n", "no FROM"), ("FROM x\nRUN a \\\n", "continued line")]
)
def test_a_broken_dockerfile_is_refused(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    with pytest.raises(DockerfileError, match=error):
        parse_dockerfile(path)
