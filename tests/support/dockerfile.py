"""A Dockerfile's build stages: base image (global ARGs substituted), name, instructions.

Enough of the format for checking what an image contains (continuations, comments inside
continued lines, ``FROM ... AS name``, legacy and ``KEY=value`` ENV); not a build.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

_VARIABLE = re.compile(r"\$\{?(\w+)\}?")


class DockerfileError(ValueError):
    """A Dockerfile this parser cannot read."""


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        """The arguments of every ``keyword`` instruction, in order."""
        return [rest for kw, rest in self.instructions if kw == keyword]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for rest in self.args("ENV"):
            tokens = shlex.split(rest)
            if tokens and "=" not in tokens[0]:  # legacy "ENV KEY value"
                values[tokens[0]] = " ".join(tokens[1:])
                continue
            for token in tokens:
                key, _, value = token.partition("=")
                values[key] = value
        return values

    def context_sources(self) -> list[str]:
        """Paths this stage COPYs from the build context (not ``--from`` another stage)."""
        sources: list[str] = []
        for copy in self.args("COPY"):
            if copy.startswith("--from"):
                continue
            words = [w for w in copy.split() if not w.startswith("--")]
            sources += words[:-1]
        return sources


def logical_lines(text: str) -> list[str]:
    """Instructions with their continuations joined; comments and blank lines dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # comments may sit inside a continued instruction too
        if stripped.endswith("\\"):
            pending += stripped[:-1].rstrip() + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    if pending:
        raise DockerfileError("the Dockerfile ends inside a continued line")
    return logical


def parse_dockerfile(path: Path) -> list[Stage]:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical_lines(path.read_text()):
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            stages.append(_stage(rest, global_args))
        elif stages:
            stages[-1].instructions.append((keyword, rest))
        elif keyword == "ARG":  # before the first FROM: usable in FROM lines
            key, _, value = rest.partition("=")
            global_args[key] = value
    if not stages:
        raise DockerfileError(f"{path.name} has no FROM")
    return stages


def _stage(from_args: str, global_args: dict[str, str]) -> Stage:
    words = [w for w in from_args.split() if not w.startswith("--")]
    base = _VARIABLE.sub(lambda m: global_args.get(m.group(1), m.group(0)), words[0])
    name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
    return Stage(base, name)
