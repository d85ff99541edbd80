"""Which paths a ``.dockerignore`` keeps out of the build context, by Docker's rules.

Hand-written on purpose: pathspec (installed) implements *gitignore* rules, which differ where it
matters here (``*.pyc`` matches at any depth in gitignore, only at the top in Docker), and
docker-py's matcher would add the Docker SDK and its HTTP stack to the test dependencies.
Docker's rules: patterns are relative to the context root, ``*``/``?`` stay inside one path
element, ``**`` spans any number, and the last pattern matching the path or one of its parents
decides (``!`` re-includes).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Rule:
    negate: bool
    regex: re.Pattern[str]


class DockerIgnore:
    def __init__(self, lines: list[str]) -> None:
        self.rules = [_rule(line) for line in _patterns(lines)]

    @classmethod
    def read(cls, path: Path) -> DockerIgnore:
        return cls(path.read_text().splitlines())

    def excludes(self, rel: str) -> bool:
        """True if the context-relative POSIX path ``rel`` is not sent to the daemon."""
        parts = rel.split("/")
        candidates = ["/".join(parts[: k + 1]) for k in range(len(parts))]
        excluded = False
        for rule in self.rules:
            if any(rule.regex.match(candidate) for candidate in candidates):
                excluded = not rule.negate
        return excluded


def _patterns(lines: list[str]) -> list[str]:
    stripped = (raw.strip() for raw in lines)
    return [line for line in stripped if line and not line.startswith("#")]


def _rule(line: str) -> Rule:
    negate = line.startswith("!")
    pattern = os.path.normpath(line.lstrip("!").strip().lstrip("/"))
    return Rule(negate, re.compile(glob_regex(pattern)))


def glob_regex(pattern: str) -> str:
    """A Docker glob as a regular expression matching the whole path."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            i += 2
            slash = pattern.startswith("/", i)
            out.append("(?:.*/)?" if slash else ".*")
            i += slash
            continue
        char = pattern[i]
        if char == "[":
            end = pattern.index("]", i)
            out.append(pattern[i : end + 1])
            i = end + 1
            continue
        out.append({"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char)))
        i += 1
    return "".join(out) + r"\Z"
