"""A Procfile's processes as honcho (``make run``) reads them, with their leading ``VAR=value``s."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from honcho.environ import parse_procfile

_ASSIGNMENT = re.compile(r"[A-Za-z_]\w*=.*")


@dataclass
class Process:
    name: str
    env: dict[str, str]
    argv: list[str]

    @property
    def module(self) -> str | None:
        return python_module(self.argv)


def read_procfile(path: Path) -> dict[str, Process]:
    """name -> Process; ``exec``/``env`` and ``VAR=value`` prefixes go into ``env``."""
    commands: dict[str, str] = parse_procfile(path.read_text()).processes
    return {name: _process(name, command) for name, command in commands.items()}


def _process(name: str, command: str) -> Process:
    tokens = shlex.split(command)
    env: dict[str, str] = {}
    while tokens and (tokens[0] in ("exec", "env") or _ASSIGNMENT.fullmatch(tokens[0])):
        key, sep, value = tokens.pop(0).partition("=")
        if sep:
            env[key] = value
    return Process(name, env, tokens)


def python_module(argv: Sequence[str] | str) -> str | None:
    """The module a ``python -m <module>`` command line runs, or None."""
    args = shlex.split(argv) if isinstance(argv, str) else list(argv)
    if "-m" in args[:-1]:
        return args[args.index("-m") + 1]
    return None
