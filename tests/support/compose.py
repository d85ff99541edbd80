"""The effective configuration ``docker compose [-f ...] [--profile ...] config`` would print.

Interpolation (``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?err}``, ``${VAR:+alt}``,
``$$``) uses ``.env`` plus explicit "shell" values, never this process's environment, so results do
not depend on who runs the tests. ``.env`` is parsed by python-dotenv (the format compose reads).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from dotenv.parser import parse_stream

# A loaded compose document: YAML mappings, lists and scalars.
Config = dict[str, Any]


class ComposeError(ValueError):
    """What compose itself would refuse (a missing required variable, bad syntax)."""


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?\Z", re.DOTALL)
# Lists an override file replaces instead of appending to.
_REPLACED_LISTS = {"command", "entrypoint", "test", "profiles"}


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's variable substitution; a bare ``${VAR}`` with VAR unset is an error here."""
    out: list[str] = []
    i = 0
    while (j := text.find("$", i)) >= 0:
        out.append(text[i:j])
        nxt = text[j + 1 : j + 2]
        if nxt == "$":
            out.append("$")
            i = j + 2
        elif nxt == "{":
            end = _closing_brace(text, j + 1)
            out.append(_expand(text[j + 2 : end], env))
            i = end + 1
        elif match := _NAME.match(text, j + 1):
            out.append(_lookup(match.group(), env))
            i = match.end()
        else:
            raise ComposeError(f"invalid interpolation at {text[j:]!r}")
    out.append(text[i:])
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    depth = 0
    for k in range(start, len(text)):
        if text[k] == "{":
            depth += 1
        elif text[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    raise ComposeError(f"unclosed ${{ in {text!r}")


def _lookup(name: str, env: Mapping[str, str]) -> str:
    if name not in env:
        raise ComposeError(f"variable {name} is not set and has no default")
    return env[name]


def _expand(body: str, env: Mapping[str, str]) -> str:
    match = _BRACED.match(body)
    if not match:
        raise ComposeError(f"invalid interpolation ${{{body}}}")
    name, op, arg = match.groups()
    if op is None:
        return _lookup(name, env)
    value = env.get(name)
    # ":-" and friends treat an empty value as unset; "-" only a missing one.
    present = bool(value) if op.startswith(":") else value is not None
    kind = op[-1]
    if kind == "-":
        return value if present and value is not None else interpolate(arg, env)
    if kind == "+":
        return interpolate(arg, env) if present else ""
    if not present or value is None:  # "?"
        raise ComposeError(f"{name}: {interpolate(arg, env)}")
    return value


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as compose reads them; a line that is not one is an error, as in compose."""
    if not path.exists():
        return {}
    values: dict[str, str] = {}
    with open(path) as stream:
        for binding in parse_stream(stream):
            if binding.error:
                raise ComposeError(f"{path.name}: not KEY=VALUE: {binding.original.string!r}")
            if binding.key is not None:
                values[binding.key] = binding.value or ""
    return values


def _interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, env) for key, value in node.items()}
    return node


def merge(base: Any, over: Any, key: str = "") -> Any:
    """Compose's override merge: mappings merge, command-like lists replace, others append."""
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        for k, v in over.items():
            merged[k] = merge(base[k], v, k) if k in base else v
        return merged
    if isinstance(base, list) and isinstance(over, list) and key not in _REPLACED_LISTS:
        return base + [item for item in over if item not in base]
    return over


def normalize_service(service: Mapping[str, Any]) -> dict[str, Any]:
    """Long forms for ``environment`` (a mapping) and ``depends_on`` (name -> condition)."""
    out = dict(service)
    env = out.get("environment")
    if isinstance(env, list):
        out["environment"] = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    deps = out.get("depends_on")
    if isinstance(deps, list):
        out["depends_on"] = {name: {"condition": "service_started"} for name in deps}
    return out


def load_compose(
    root: Path,
    files: Sequence[str],
    profiles: Sequence[str] = (),
    shell: Mapping[str, str] | None = None,
    use_dotenv: bool = True,
) -> Config:
    """Merge ``files`` (relative to ``root``), interpolate, keep the services of ``profiles``."""
    env = {**(read_dotenv(root / ".env") if use_dotenv else {}), **(shell or {})}
    merged: Config = {}
    for name in files:
        doc = yaml.safe_load((root / name).read_text())
        if not isinstance(doc, dict):
            raise ComposeError(f"{name} is not a mapping")
        services = doc.get("services") or {}
        doc["services"] = {svc: normalize_service(spec or {}) for svc, spec in services.items()}
        merged = merge(merged, _interpolate_tree(doc, env))
    merged["services"] = {
        name: spec
        for name, spec in merged["services"].items()
        if not spec.get("profiles") or set(spec["profiles"]) & set(profiles)
    }
    return merged


def service_env(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's environment as the container sees it (booleans as compose writes them)."""
    env = service.get("environment") or {}
    return {key: _env_str(value) for key, value in env.items() if value is not None}


def _env_str(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def parse_port(entry: str | int | Mapping[str, Any]) -> tuple[str | None, int | None, int]:
    """(host ip, published port, container port) of a short or long ``ports`` entry."""
    if isinstance(entry, Mapping):
        published = entry.get("published")
        return entry.get("host_ip"), int(published) if published else None, int(entry["target"])
    text = str(entry).split("/", 1)[0]
    parts = text.rsplit(":", 2)
    if len(parts) == 1:
        return None, None, int(parts[0])
    if len(parts) == 2:
        return None, int(parts[0]), int(parts[1])
    return parts[0].strip("[]"), int(parts[1]), int(parts[2])


def duration_seconds(value: str) -> float:
    """A compose duration (``1m30s``, ``500ms``) in seconds; ValueError if it is none."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    total = sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value))
    if total <= 0:
        raise ValueError(f"not a duration: {value!r}")
    return total
