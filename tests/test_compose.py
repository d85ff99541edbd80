"""The container files describe the same, working topology as `make run`, with no Docker engine.

* docker-compose.yml (alone, with ``--profile rtsp-demo``, and with docker-compose.cameras.yml)
  validates against the Compose spec (check-jsonschema's builtin ``vendor.compose-spec``).
* Every framebus service's environment holds only variables its settings class reads, and
  that class loads from it; healthchecks call ``/readyz`` on the port those settings listen on;
  published ports and ``command`` agree with the settings; ``depends_on`` cannot deadlock.
* The Procfile runs the same processes with the same default ports as compose.
* The Dockerfile's final stage runs as non-root, unbuffered, without compilers; .dockerignore
  keeps the context small without dropping what the Dockerfile copies.

Compose interpolation (``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?err}``,
``${VAR:+alt}``, ``$$``) is done here from ``.env`` plus explicit "shell" values, never from
this process's environment, so the results do not depend on who runs the tests.
"""

from __future__ import annotations

import http.server
import importlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from services.capture.settings import CaptureSettings
from services.gateway.settings import GatewaySettings
from services.viewer.settings import ViewerSettings
from shared.settings import env_names

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = "docker-compose.yml"
CAMERAS_FILE = "docker-compose.cameras.yml"

# service module -> (settings class, the field holding the port it listens on)
SETTINGS: dict[str, tuple[type[BaseSettings], str]] = {
    "capture": (CaptureSettings, "capture_port"),
    "gateway": (GatewaySettings, "gateway_port"),
    "viewer": (ViewerSettings, "viewer_port"),
}
# Services that are not framebus processes; anything else must run one of SETTINGS' modules.
THIRD_PARTY = {"redis", "mediamtx", "rtsp-publisher"}
# Modules whose readiness needs frames to flow: nothing may wait for them to be healthy.
NEEDS_FRAMES = {"capture", "viewer"}


@dataclass(frozen=True)
class Variant:
    id: str
    files: tuple[str, ...]
    profiles: tuple[str, ...] = ()


VARIANTS = [
    Variant("default", (COMPOSE_FILE,)),
    Variant("rtsp-demo", (COMPOSE_FILE,), ("rtsp-demo",)),
    Variant("cameras", (COMPOSE_FILE, CAMERAS_FILE)),
]


# ---- compose interpolation and loading --------------------------------------------------------


class ComposeError(ValueError):
    pass


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?\Z", re.DOTALL)


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
    """KEY=VALUE lines as compose reads them (comments, ``export``, quotes, `` #`` comments)."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep or not _NAME.fullmatch(key.strip()):
            raise ComposeError(f"{path.name}: not KEY=VALUE: {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0]
        values[key.strip()] = value
    return values


def _interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, env) for key, value in node.items()}
    return node


_REPLACED_LISTS = {"command", "entrypoint", "test", "profiles"}


def _merge(base: Any, over: Any, key: str = "") -> Any:
    """Compose's override merge: mappings merge, command-like lists replace, others append."""
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        for k, v in over.items():
            merged[k] = _merge(base[k], v, k) if k in base else v
        return merged
    if isinstance(base, list) and isinstance(over, list) and key not in _REPLACED_LISTS:
        return base + [item for item in over if item not in base]
    return over


def _normalize(service: dict[str, Any]) -> dict[str, Any]:
    service = dict(service)
    env = service.get("environment")
    if isinstance(env, list):
        service["environment"] = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    deps = service.get("depends_on")
    if isinstance(deps, list):
        service["depends_on"] = {name: {"condition": "service_started"} for name in deps}
    return service


def load_compose(
    files: Sequence[str] = (COMPOSE_FILE,),
    profiles: Sequence[str] = (),
    shell: Mapping[str, str] | None = None,
    use_dotenv: bool = True,
) -> dict[str, Any]:
    """The effective config `docker compose [-f ...] [--profile ...] config` would print."""
    env = {**(read_dotenv(ROOT / ".env") if use_dotenv else {}), **(shell or {})}
    merged: dict[str, Any] = {}
    for name in files:
        doc = yaml.safe_load((ROOT / name).read_text())
        assert isinstance(doc, dict), f"{name} is not a mapping"
        doc["services"] = {svc: _normalize(spec or {}) for svc, spec in (doc.get("services") or {}).items()}
        merged = _merge(merged, _interpolate_tree(doc, env))
    merged["services"] = {
        name: spec
        for name, spec in merged["services"].items()
        if not spec.get("profiles") or set(spec["profiles"]) & set(profiles)
    }
    return merged


def load_variant(variant: Variant, shell: Mapping[str, str] | None = None) -> dict[str, Any]:
    return load_compose(variant.files, variant.profiles, shell)


def compose_env(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    return {key: _env_str(value) for key, value in env.items() if value is not None}


def _env_str(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


# ---- Dockerfile -------------------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
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


def parse_dockerfile(path: Path) -> list[Stage]:
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # comments may sit inside a continued instruction too
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    assert not pending, "Dockerfile ends inside a continued line"
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m.group(1), m.group(0)), words[0])
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base, name))
        elif not stages:
            if keyword == "ARG":
                key, _, value = rest.partition("=")
                global_args[key] = value
        else:
            stages[-1].instructions.append((keyword, rest))
    assert stages, "Dockerfile has no FROM"
    return stages


DOCKERFILE = ROOT / "Dockerfile"


def image_env() -> dict[str, str]:
    """ENV of the image's final stage (what a container starts with before compose's env)."""
    return parse_dockerfile(DOCKERFILE)[-1].env()


def image_cmd() -> list[str]:
    cmds = parse_dockerfile(DOCKERFILE)[-1].args("CMD")
    assert cmds, "the final stage has no CMD"
    return list(yaml.safe_load(cmds[-1]))  # exec form is a JSON array


# ---- framebus services --------------------------------------------------------------------------


def module_of(command: Sequence[str] | str | None) -> str | None:
    """``services.<name>`` run by ``python -m``, or None."""
    argv = shlex.split(command) if isinstance(command, str) else list(command or image_cmd())
    if "-m" in argv[:-1]:
        module = argv[argv.index("-m") + 1]
        if module.startswith("services."):
            return module.removeprefix("services.")
    return None


def framebus_services(config: Mapping[str, Any]) -> dict[str, str]:
    """service name -> service module for every compose service that runs framebus."""
    found: dict[str, str] = {}
    for name, spec in config["services"].items():
        if name in THIRD_PARTY:
            assert "build" not in spec, f"{name}: a third-party service should not build our image"
            continue
        module = module_of(spec.get("command"))
        assert module in SETTINGS, f"{name}: runs {module!r}, not one of services.{sorted(SETTINGS)}"
        found[name] = module
    return found


def load_settings(
    monkeypatch: pytest.MonkeyPatch, cls: type[BaseSettings], env: Mapping[str, str]
) -> BaseSettings:
    """Instantiate a settings class from exactly ``env`` (the test process's env is masked)."""
    accepted = env_names(cls)
    for name in list(os.environ):
        if name.upper() in accepted:
            monkeypatch.delenv(name)
    for key, value in env.items():
        if key.upper() in accepted:
            monkeypatch.setenv(key, value)
    return cls()


def container_settings(monkeypatch: pytest.MonkeyPatch, module: str, service: Mapping[str, Any]) -> Any:
    cls, _ = SETTINGS[module]
    return load_settings(monkeypatch, cls, {**image_env(), **compose_env(service)})


def listen_port(settings: Any, module: str) -> int:
    return int(getattr(settings, SETTINGS[module][1]))


_READYZ_URL = re.compile(r"https?://(127\.0\.0\.1|localhost):(\d+)(/[^'\"\s)]*)")


def healthcheck_url(name: str, spec: Mapping[str, Any]) -> tuple[int, str, list[str]]:
    check = spec.get("healthcheck")
    assert check and not check.get("disable"), f"{name}: no healthcheck"
    test = check["test"]
    assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL"), f"{name}: healthcheck.test {test!r}"
    text = " ".join(test[1:])
    assert not re.search(r"\b(curl|wget)\b", text), f"{name}: slim images have no curl/wget: {text}"
    match = _READYZ_URL.search(text)
    assert match, f"{name}: healthcheck does not call a local URL: {text}"
    return int(match.group(2)), match.group(3), test


def parse_port(entry: Any) -> tuple[str | None, int | None, int]:
    """(host ip, published port, container port) of a short or long ``ports`` entry."""
    if isinstance(entry, dict):
        published = entry.get("published")
        return entry.get("host_ip"), int(published) if published else None, int(entry["target"])
    text = str(entry).split("/", 1)[0]
    parts = text.rsplit(":", 2)
    if len(parts) == 1:
        return None, None, int(parts[0])
    if len(parts) == 2:
        return None, int(parts[0]), int(parts[1])
    return parts[0].strip("[]"), int(parts[1]), int(parts[2])


# ---- the tests: interpolation helper ------------------------------------------------------------


def test_interpolation_helper_follows_compose_rules() -> None:
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


# ---- the tests: schema ----------------------------------------------------------------------------


def _check_jsonschema() -> str:
    exe = Path(sys.executable).with_name("check-jsonschema")
    if not exe.exists():
        found = shutil.which("check-jsonschema")
        assert found, "check-jsonschema is not installed (pip install check-jsonschema)"
        return found
    return str(exe)


def _validate(paths: Sequence[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_check_jsonschema(), "--builtin-schema", "vendor.compose-spec", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_compose_validates_against_compose_spec(variant: Variant, tmp_path: Path) -> None:
    """Each file as written, and the merged + interpolated + profile-selected result."""
    rendered = tmp_path / f"rendered-{variant.id}.yml"
    rendered.write_text(yaml.safe_dump(load_variant(variant), sort_keys=False))
    result = _validate([*(ROOT / name for name in variant.files), rendered])
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_rejects_an_unknown_key(tmp_path: Path) -> None:
    """The validator really validates: a misspelt key in our compose file fails it."""
    text = (ROOT / COMPOSE_FILE).read_text()
    assert "    healthcheck:" in text
    bad = tmp_path / "docker-compose.yml"
    bad.write_text(text.replace("    healthcheck:", "    healthchek:", 1))
    result = _validate([bad])
    assert result.returncode != 0
    assert "healthchek" in result.stdout + result.stderr


# ---- the tests: environment and settings ------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_environment_is_what_the_settings_accept(variant: Variant, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_variant(variant)
    for name, module in framebus_services(config).items():
        cls, _ = SETTINGS[module]
        env = compose_env(config["services"][name])
        unknown = {key for key in env if key.upper() not in env_names(cls)}
        assert not unknown, f"{name}: {cls.__name__} does not read {sorted(unknown)}"
        settings = load_settings(monkeypatch, cls, {**image_env(), **env})  # raises if invalid
        assert settings.bind_host == "0.0.0.0", f"{name}: must listen on all interfaces in a container"


@pytest.mark.parametrize("transport", ["redis", "http"])
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_transport_switches_end_to_end(
    variant: Variant, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`TRANSPORT=... docker compose up` reaches every capture and the viewer; the wiring matches."""
    config = load_variant(variant, shell={"TRANSPORT": transport})
    services = config["services"]
    loaded = {
        name: container_settings(monkeypatch, module, services[name])
        for name, module in framebus_services(config).items()
    }
    by_module: dict[str, list[str]] = {}
    for name, module in framebus_services(config).items():
        by_module.setdefault(module, []).append(name)
    assert set(by_module) == set(SETTINGS), f"missing framebus services: {set(SETTINGS) - set(by_module)}"
    (gateway,) = (loaded[name] for name in by_module["gateway"])
    (gateway_name,) = by_module["gateway"]
    assert gateway.gateway_token, "the gateway must require a token by default (GATEWAY_TOKEN in .env)"
    for name in by_module["capture"] + by_module["viewer"]:
        settings = loaded[name]
        assert settings.transport == transport, f"{name}: transport {settings.transport}"
        assert settings.redis_url == "redis://redis:6379/0", f"{name}: {settings.redis_url}"
        assert settings.gateway_url == f"http://{gateway_name}:{gateway.gateway_port}", (
            f"{name}: {settings.gateway_url}"
        )
        assert "redis" in services
    for name in by_module["capture"]:
        assert loaded[name].gateway_token == gateway.gateway_token, (
            f"{name}: token differs from the gateway's"
        )
    cameras = [loaded[name].camera_id for name in by_module["capture"]]
    assert len(cameras) == len(set(cameras)), f"two captures publish the same camera id: {cameras}"


def test_gateway_token_is_required_from_dotenv() -> None:
    """Without .env (or an exported GATEWAY_TOKEN) compose refuses instead of running open."""
    assert read_dotenv(ROOT / ".env").get("GATEWAY_TOKEN"), ".env must set a default GATEWAY_TOKEN"
    with pytest.raises(ComposeError, match="GATEWAY_TOKEN"):
        load_compose(use_dotenv=False)


def test_dotenv_is_safe_for_honcho() -> None:
    """honcho (`make run`) loads .env into every process: only variables our settings read."""
    known = set().union(*(env_names(cls) for cls, _ in SETTINGS.values()))
    keys = set(read_dotenv(ROOT / ".env"))
    assert keys <= known, f".env sets variables no service reads: {sorted(keys - known)}"


# ---- the tests: health, ports, command --------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_healthcheck_calls_readyz_on_the_settings_port(
    variant: Variant, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_variant(variant)
    for name, module in framebus_services(config).items():
        spec = config["services"][name]
        port, path, _ = healthcheck_url(name, spec)
        settings = container_settings(monkeypatch, module, spec)
        assert path == "/readyz", f"{name}: healthcheck calls {path}"
        assert port == listen_port(settings, module), (
            f"{name}: healthcheck port {port}, listens on {listen_port(settings, module)}"
        )
        check = spec["healthcheck"]
        for key in ("interval", "timeout", "retries", "start_period"):
            assert key in check, f"{name}: healthcheck.{key} missing"


_ROUTES_SCRIPT = """
import inspect, json, sys
from importlib import import_module
module = sys.argv[1]
settings_cls = getattr(import_module(f"services.{module}.settings"), sys.argv[2])
app = import_module(f"services.{module}.app").create_app(settings_cls())
assert not inspect.isawaitable(app), "create_app(settings) must return the Application itself"
print(json.dumps(sorted({(r.method, r.resource.canonical) for r in app.router.routes() if r.resource})))
"""


@pytest.mark.parametrize("module", sorted(SETTINGS))
def test_readyz_is_a_route_of_the_app(module: str) -> None:
    """The path the healthcheck calls is registered by ``services.<module>.app.create_app``.

    One process per service, as in production (the services' Prometheus metrics share names
    in the default registry, so two services' apps cannot be imported into one process).
    """
    config = load_compose()
    spec = config["services"][module]
    assert framebus_services(config)[module] == module
    _, path, _ = healthcheck_url(module, spec)
    cls, _ = SETTINGS[module]
    env = {k: v for k, v in os.environ.items() if k.upper() not in env_names(cls)}
    env.update({**image_env(), **compose_env(spec)}, PATH=os.environ.get("PATH", ""))
    result = subprocess.run(
        [sys.executable, "-c", _ROUTES_SCRIPT, module, cls.__name__],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    routes = {tuple(route) for route in json.loads(result.stdout.strip().splitlines()[-1])}
    assert ("GET", path) in routes, f"services.{module}.app has no GET {path}: {sorted(routes)}"
    assert ("GET", "/livez") in routes


class _ReadyzHandler(http.server.BaseHTTPRequestHandler):
    ready = True

    def do_GET(self) -> None:
        status = 200 if self.path == "/readyz" and type(self).ready else 503
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def readyz_server() -> Iterator[tuple[int, type[_ReadyzHandler]]]:
    handler = type("Handler", (_ReadyzHandler,), {"ready": True})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_healthcheck_command_fails_when_not_ready(readyz_server: tuple[int, type[_ReadyzHandler]]) -> None:
    """Run each distinct healthcheck command against a stand-in: exit 0 on 200, non-zero on 503."""
    free_port, handler = readyz_server
    commands: set[tuple[str, ...]] = set()
    for variant in VARIANTS:
        config = load_variant(variant)
        for name in framebus_services(config):
            port, _, test = healthcheck_url(name, config["services"][name])
            assert test[0] == "CMD" and test[1] == "python", f"{name}: expected [CMD, python, ...]: {test}"
            commands.add(tuple(arg.replace(f":{port}/", f":{free_port}/") for arg in test[2:]))
    assert commands
    for args in commands:
        for ready, ok in ((True, True), (False, False)):
            handler.ready = ready
            result = subprocess.run([sys.executable, *args], capture_output=True, timeout=20)
            assert (result.returncode == 0) == ok, f"{args}: ready={ready} exit {result.returncode}"


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_published_ports_match_settings(variant: Variant, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_variant(variant)
    published: dict[int, str] = {}
    for name, module in framebus_services(config).items():
        spec = config["services"][name]
        port = listen_port(container_settings(monkeypatch, module, spec), module)
        for entry in spec.get("ports") or []:
            _, host, target = parse_port(entry)
            assert target == port, f"{name}: publishes container port {target}, listens on {port}"
            assert host is not None, f"{name}: publish a fixed host port, not a random one"
            assert host not in published, f"{name} and {published.get(host)} both publish host port {host}"
            published[host] = name
        if module in ("viewer", "gateway") and name == module:
            hosts = [parse_port(entry)[1] for entry in spec.get("ports") or []]
            assert port in hosts, f"{name}: must be published on host port {port} (as `make run` serves it)"


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_command_selects_the_service_module(variant: Variant) -> None:
    config = load_variant(variant)
    for name, module in framebus_services(config).items():
        assert name.split("-")[0] == module, f"{name}: runs services.{module}"
        assert "build" in config["services"][name], f"{name}: must build the framebus image"
        assert importlib.util.find_spec(f"services.{module}.__main__"), f"services.{module} has no __main__"
    assert module_of(image_cmd()) in SETTINGS, f"the image's CMD {image_cmd()} runs no framebus service"


def _seconds(value: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    total = sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value))
    assert total > 0, f"not a duration: {value!r}"
    return total


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_restart_and_stop_grace(variant: Variant) -> None:
    config = load_variant(variant)
    for name, spec in config["services"].items():
        assert spec.get("restart") == "unless-stopped", f"{name}: restart {spec.get('restart')!r}"
        grace = _seconds(str(spec.get("stop_grace_period", "10s")))
        assert 2 <= grace <= 10, f"{name}: stop_grace_period {grace}s (services stop in < 2 s)"


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_depends_on_cannot_deadlock(variant: Variant) -> None:
    """Targets exist and have healthchecks; nobody waits for a service that needs frames; no cycle."""
    config = load_variant(variant)
    services = config["services"]
    modules = framebus_services(config)
    for name, spec in services.items():
        for dep, rule in (spec.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on {dep}, which is not in the {variant.id} config"
            if rule.get("condition") == "service_healthy":
                assert services[dep].get("healthcheck"), (
                    f"{name} waits for {dep} to be healthy; it has no healthcheck"
                )
                assert modules.get(dep) not in NEEDS_FRAMES, (
                    f"{name} waits for {dep}, whose readiness needs frames"
                )
    for name, module in modules.items():
        if module in NEEDS_FRAMES:
            deps = services[name].get("depends_on") or {}
            for needed in ("redis", "gateway"):
                assert deps.get(needed, {}).get("condition") == "service_healthy", (
                    f"{name}: depend on {needed} healthy"
                )

    def visit(node: str, path: tuple[str, ...]) -> None:
        assert node not in path, f"depends_on cycle: {' -> '.join((*path, node))}"
        for dep in services[node].get("depends_on") or {}:
            visit(dep, (*path, node))

    for name in services:
        visit(name, ())


# ---- the tests: same topology as `make run` ---------------------------------------------------------


@dataclass
class Process:
    name: str
    env: dict[str, str]
    argv: list[str]

    @property
    def module(self) -> str | None:
        return module_of(self.argv)


def parse_procfile(path: Path) -> dict[str, Process]:
    processes: dict[str, Process] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, command = line.partition(":")
        assert sep and re.fullmatch(r"[A-Za-z0-9_-]+", name), f"{path.name}: bad line {raw!r}"
        tokens = shlex.split(command)
        env: dict[str, str] = {}
        while tokens and (tokens[0] in ("exec", "env") or re.fullmatch(r"[A-Za-z_]\w*=.*", tokens[0])):
            token = tokens.pop(0)
            if "=" in token:
                key, _, value = token.partition("=")
                env[key] = value
        processes[name] = Process(name, env, tokens)
    return processes


def test_procfile_and_compose_run_the_same_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    procfile = ROOT / "Procfile"
    assert procfile.exists(), "Procfile (make run) is missing"
    processes = parse_procfile(procfile)
    config = load_compose()
    services = framebus_services(config)
    assert set(processes) == set(services), f"Procfile {sorted(processes)} vs compose {sorted(services)}"
    dotenv = read_dotenv(ROOT / ".env")  # honcho loads .env as well
    for name, process in processes.items():
        module = services[name]
        assert process.module == module, (
            f"Procfile {name}: runs {process.argv}, compose runs services.{module}"
        )
        cls, _ = SETTINGS[module]
        local = load_settings(monkeypatch, cls, {**dotenv, **process.env})
        container = container_settings(monkeypatch, module, config["services"][name])
        assert listen_port(local, module) == listen_port(container, module), f"{name}: ports differ"
        for field_name in ("transport", "camera_id", "gateway_token"):
            if field_name in cls.model_fields:
                assert getattr(local, field_name) == getattr(container, field_name), (
                    f"{name}: {field_name} differs"
                )
        for entry in config["services"][name].get("ports") or []:
            assert parse_port(entry)[1] == listen_port(local, module), f"{name}: compose publishes {entry}"


def test_cameras_override_matches_procfile_cameras(monkeypatch: pytest.MonkeyPatch) -> None:
    """`make run CAMERAS=2` and the cameras override add the same second camera."""
    extra = ROOT / "Procfile.cameras"
    if not extra.exists():
        pytest.skip("no Procfile.cameras")
    first = next(iter(parse_procfile(extra).values()))
    assert first.module == "capture"
    local = load_settings(monkeypatch, CaptureSettings, {**read_dotenv(ROOT / ".env"), **first.env})
    config = load_compose((COMPOSE_FILE, CAMERAS_FILE))
    added = sorted(set(framebus_services(config)) - set(framebus_services(load_compose())))
    assert len(added) == 1, f"the override should add one capture, adds {added}"
    container = container_settings(monkeypatch, "capture", config["services"][added[0]])
    assert (container.camera_id, container.capture_port) == (local.camera_id, local.capture_port)
    viewer = container_settings(monkeypatch, "viewer", config["services"]["viewer"])
    assert container.camera_id in viewer.pinned_cameras, "the viewer should follow the added camera"


# ---- the tests: Dockerfile and .dockerignore -----------------------------------------------------------


def test_dockerfile_final_stage_is_slim_unbuffered_and_non_root() -> None:
    stages = parse_dockerfile(DOCKERFILE)
    assert len(stages) >= 2, "multi-stage: a builder and a runtime stage"
    final, builder = stages[-1], stages[0]
    assert final.base == "python:3.11-slim-bookworm", final.base
    assert builder.base == final.base, "the venv is copied: build it on the same Python as the runtime"
    env = final.env()
    assert env.get("PYTHONUNBUFFERED") == "1"
    assert env.get("BIND_HOST") == "0.0.0.0"
    users = final.args("USER")
    assert users, "the final stage must set USER"
    assert users[-1].split(":")[0] not in ("root", "0"), f"final USER is {users[-1]}"
    copies = final.args("COPY")
    venv_copy = [c for c in copies if c.startswith(f"--from={builder.name}") and "/opt/venv" in c]
    assert venv_copy, "the final stage copies the builder's venv"
    assert env.get("PATH", "").startswith("/opt/venv/bin:"), "the venv's python must come first on PATH"
    build_tools = re.compile(
        r"(?<![\w.-])(gcc|g\+\+|cc|clang|make|cmake|build-essential|build-base|[\w.+-]+-dev)(?![\w.-])"
    )
    for run in final.args("RUN"):
        assert not re.search(r"\bpip3? install\b", run), f"final stage installs with pip: {run}"
        for install in re.findall(r"(?:apt-get|apt|apk)\s+(?:install|add)\s+([^&;|]*)", run):
            assert not build_tools.search(install), f"final stage installs build tools: {install}"


def _dockerignore_rules(path: Path) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip().lstrip("/"))
        rules.append((negate, re.compile(_glob_regex(pattern))))
    return rules


def _glob_regex(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                out.append("(?:.*/)?")
                i += 1
            else:
                out.append(".*")
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.index("]", i)
            out.append(pattern[i : end + 1])
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out) + r"\Z"


def dockerignored(rel: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = rel.split("/")
    candidates = ["/".join(parts[: k + 1]) for k in range(len(parts))]
    excluded = False
    for negate, regex in rules:
        if any(regex.match(candidate) for candidate in candidates):
            excluded = not negate
    return excluded


def test_dockerignore_keeps_the_context_small_but_complete() -> None:
    rules = _dockerignore_rules(ROOT / ".dockerignore")
    for junk in (
        ".venv/bin/python",
        ".git/HEAD",
        ".env",
        "bench/results/run.csv",
        ".pytest_cache/v/cache/nodeids",
        ".mypy_cache/3.11/x.json",
        ".ruff_cache/x",
        ".run/redis.pid",
        "services/viewer/__pycache__/app.cpython-311.pyc",
        "framebus.egg-info/PKG-INFO",
    ):
        assert dockerignored(junk, rules), f"{junk} would be sent to the Docker daemon"
    sources = []
    for stage in parse_dockerfile(DOCKERFILE):
        for copy in stage.args("COPY"):
            words = [w for w in copy.split() if not w.startswith("--")]
            if not copy.startswith("--from"):
                sources += words[:-1]
    assert sources, "the Dockerfile copies nothing from the context"
    for source in sources:
        base = ROOT / source
        assert base.exists(), f"Dockerfile copies {source}, which does not exist"
        files = (
            [base]
            if base.is_file()
            else [p for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        )
        for file in files:
            rel = file.relative_to(ROOT).as_posix()
            assert not dockerignored(rel, rules), f".dockerignore drops {rel}, which the Dockerfile copies"
