"""The container files describe the same, working topology as `make run`, with no Docker engine.

* docker-compose.yml (alone, with ``--profile rtsp-demo``, with docker-compose.cameras.yml and
  with docker-compose.replicas.yml) validates against the Compose spec (check-jsonschema's
  builtin ``vendor.compose-spec``).
* Every framebus service's environment holds only variables its settings class reads, and
  that class loads from it; healthchecks call ``/readyz`` on the port those settings listen on;
  published ports and ``command`` agree with the settings; ``depends_on`` cannot deadlock.
* The Procfile runs the same processes with the same default ports as compose.
* The replicas override's load balancer (docker/haproxy) balances exactly its gateway replicas,
  with the policy of deploy/haproxy/haproxy.cfg, and capture and viewer go through it.
* The Dockerfile's final stage runs as non-root, unbuffered, without compilers; .dockerignore
  keeps the context small without dropping what the Dockerfile copies.

The files are read, not restated: ports, images and variables come from the files and the
settings classes. The parsing (compose interpolation and merge, Dockerfile, .dockerignore,
Procfile) lives in ``tests.support`` with its own tests; interpolation uses ``.env`` plus explicit
"shell" values, never this process's environment, so results do not depend on who runs them.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
import yaml

from services.capture.settings import CaptureSettings
from services.gateway.settings import GatewaySettings
from services.viewer.settings import ViewerSettings
from shared.settings import CommonSettings, env_names
from tests.support.compose import (
    ComposeError,
    Config,
    duration_seconds,
    load_compose,
    parse_port,
    read_dotenv,
    service_env,
)
from tests.support.dockerfile import parse_dockerfile
from tests.support.dockerignore import DockerIgnore
from tests.support.procfile import python_module, read_procfile

SettingsT = TypeVar("SettingsT", bound=CommonSettings)

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = "docker-compose.yml"
CAMERAS_FILE = "docker-compose.cameras.yml"
REPLICAS_FILE = "docker-compose.replicas.yml"
LB_CONFIG = ROOT / "docker" / "haproxy" / "haproxy.cfg"
EXAMPLE_LB_CONFIG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
DOCKERFILE = ROOT / "Dockerfile"
DOTENV = ROOT / ".env"

# service module -> (settings class, the field holding the port it listens on)
SETTINGS: dict[str, tuple[type[CommonSettings], str]] = {
    "capture": (CaptureSettings, "capture_port"),
    "gateway": (GatewaySettings, "gateway_port"),
    "viewer": (ViewerSettings, "viewer_port"),
}
# Services that are not framebus processes; anything else must run one of SETTINGS' modules.
THIRD_PARTY = {"redis", "mediamtx", "rtsp-publisher", "lb"}
# One-shot helpers on our image that are not services: they print something and exit.
ONE_SHOT = {"viewer-link": "framebus.token"}
# Examples on our image that are not framebus services (profile `algorithm`).
EXAMPLES = {"algorithm"}
# .env values only compose uses; scripts/run_local.sh keeps them from honcho (`make run`).
COMPOSE_ONLY_DOTENV = {
    "FRAMEBUS_AUTH_SECRET", "REDIS_CAPTURE_PASSWORD", "REDIS_VIEWER_PASSWORD",
    "REDIS_GATEWAY_PASSWORD", "REDIS_ADMIN_PASSWORD",
}  # fmt: skip
# Modules whose readiness needs frames to flow: nothing may wait for them to be healthy.
NEEDS_FRAMES = {"capture", "viewer"}


@dataclass(frozen=True)
class Variant:
    id: str
    files: tuple[str, ...]
    profiles: tuple[str, ...] = ()


DEFAULT = Variant("default", (COMPOSE_FILE,))
CAMERAS = Variant("cameras", (COMPOSE_FILE, CAMERAS_FILE))
REPLICAS = Variant("replicas", (COMPOSE_FILE, REPLICAS_FILE))
VARIANTS = [
    DEFAULT,
    Variant("rtsp-demo", (COMPOSE_FILE,), ("rtsp-demo",)),
    Variant("algorithm", (COMPOSE_FILE,), ("algorithm",)),
    CAMERAS,
    REPLICAS,
]
BUILD_TOOLS = re.compile(
    r"(?<![\w.-])(gcc|g\+\+|cc|clang|make|cmake|build-essential|build-base|[\w.+-]+-dev)(?![\w.-])"
)


# ---- reading the files ---------------------------------------------------------------------------


def load_variant(variant: Variant, shell: Mapping[str, str] | None = None) -> Config:
    return load_compose(ROOT, variant.files, variant.profiles, shell)


def image_env() -> dict[str, str]:
    """ENV of the image's final stage (what a container starts with before compose's env)."""
    return parse_dockerfile(DOCKERFILE)[-1].env()


def image_cmd() -> list[str]:
    cmds = parse_dockerfile(DOCKERFILE)[-1].args("CMD")
    assert cmds, "the final stage has no CMD"
    return list(json.loads(cmds[-1]))  # exec form is a JSON array


def minimum_python() -> tuple[int, int]:
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    match = re.search(r">=\s*(\d+)\.(\d+)", requires)
    assert match, f"requires-python has no lower bound: {requires}"
    return int(match[1]), int(match[2])


def context_files(base: Path) -> list[str]:
    """Context-relative paths of ``base`` (a file, or a directory's files without caches)."""
    files = [base] if base.is_file() else [p for p in base.rglob("*") if p.is_file()]
    return [p.relative_to(ROOT).as_posix() for p in files if "__pycache__" not in p.parts]


# ---- framebus services --------------------------------------------------------------------------


def module_of(command: Sequence[str] | str | None) -> str | None:
    """``<name>`` of the ``services.<name>`` a command (or the image's CMD) runs, or None."""
    module = python_module(command or image_cmd())
    if module and module.startswith("services."):
        return module.removeprefix("services.")
    return None


def build_context(spec: Mapping[str, Any]) -> str | None:
    """The build context of a service, normalised (``.`` is the framebus image's), or None."""
    build = spec.get("build")
    if build is None:
        return None
    context = build if isinstance(build, str) else build.get("context", ".")
    return os.path.normpath(context)


def replica_base(name: str) -> str:
    """``gateway2`` -> ``gateway``: replicas of a service are named after it plus a number."""
    return re.sub(r"\d+$", "", name)


def framebus_services(config: Mapping[str, Any]) -> dict[str, str]:
    """service name -> service module for every compose service that runs framebus."""
    found: dict[str, str] = {}
    for name, spec in config["services"].items():
        if name in THIRD_PARTY:
            assert build_context(spec) != ".", f"{name}: a third-party service should not build our image"
            continue
        if name in ONE_SHOT or name in EXAMPLES:
            continue
        module = module_of(spec.get("command"))
        assert module in SETTINGS, f"{name}: runs {module!r}, not one of services.{sorted(SETTINGS)}"
        found[name] = module
    return found


def load_settings(monkeypatch: pytest.MonkeyPatch, cls: type[SettingsT], env: Mapping[str, str]) -> SettingsT:
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
    return load_settings(monkeypatch, cls, {**image_env(), **service_env(service)})


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
        env = service_env(config["services"][name])
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
    gateways = [loaded[name] for name in by_module["gateway"]]
    gateway = gateways[0]
    assert gateway.auth_secret, "the gateway must require tokens by default (FRAMEBUS_AUTH_SECRET in .env)"
    for replica in gateways:
        # Replicas share frames through the backplane and accept each other's tokens.
        assert replica.gateway_backplane == "redis", "compose runs the gateway as the bus's HTTP edge"
        assert replica.auth_secret == gateway.auth_secret, "gateway replicas with different AUTH_SECRETs"
    gateway_url = expected_gateway_url(services, by_module["gateway"], listen_port(gateway, "gateway"))
    for user, names in by_module.items():
        for name in names:
            redis_url = urlsplit(loaded[name].redis_url)
            # Each connects as its own Redis ACL user (deploy/redis/users.acl.template).
            assert (redis_url.hostname, redis_url.port, redis_url.username) == ("redis", 6379, user), name
            assert redis_url.password, f"{name}: no Redis password"
    for name in by_module["capture"] + by_module["viewer"]:
        settings = loaded[name]
        assert settings.transport == transport, f"{name}: transport {settings.transport}"
        assert settings.gateway_url == gateway_url, f"{name}: {settings.gateway_url}"
        assert "redis" in services
    for name in by_module["capture"] + by_module["viewer"]:
        assert loaded[name].auth_secret == gateway.auth_secret, (
            f"{name}: AUTH_SECRET differs from the gateway's"
        )
    cameras = [loaded[name].camera_id for name in by_module["capture"]]
    assert len(cameras) == len(set(cameras)), f"two captures publish the same camera id: {cameras}"


def expected_gateway_url(services: Mapping[str, Any], gateway_names: Sequence[str], port: int) -> str:
    """One gateway: itself. Replicas: the load balancer's frontend, which every client must use."""
    if len(gateway_names) == 1:
        return f"http://{gateway_names[0]}:{port}"
    assert "lb" in services, f"gateway replicas {sorted(gateway_names)} without a load balancer"
    return f"http://lb:{lb_frontend_port()}"


def test_auth_secret_is_required_from_dotenv() -> None:
    """Without .env (or an exported FRAMEBUS_AUTH_SECRET) compose refuses instead of running open."""
    assert read_dotenv(DOTENV).get("FRAMEBUS_AUTH_SECRET"), ".env must set FRAMEBUS_AUTH_SECRET"
    with pytest.raises(ComposeError, match="FRAMEBUS_AUTH_SECRET"):
        load_compose(ROOT, (COMPOSE_FILE,), use_dotenv=False)


def test_viewer_link_prints_a_page_link_once() -> None:
    spec = load_variant(DEFAULT)["services"]["viewer-link"]
    assert spec["command"][:3] == ["python", "-m", "framebus.token"] and "--link" in spec["command"]
    assert spec.get("restart") == "no"


def test_dotenv_is_safe_for_honcho() -> None:
    """honcho (`make run`) loads .env into every process: only variables our settings read."""
    known = set().union(*(env_names(cls) for cls, _ in SETTINGS.values())) | COMPOSE_ONLY_DOTENV
    keys = set(read_dotenv(DOTENV))
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
    config = load_variant(DEFAULT)
    spec = config["services"][module]
    assert framebus_services(config)[module] == module
    _, path, _ = healthcheck_url(module, spec)
    cls, _ = SETTINGS[module]
    env = {k: v for k, v in os.environ.items() if k.upper() not in env_names(cls)}
    env.update({**image_env(), **service_env(spec)}, PATH=os.environ.get("PATH", ""))
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
        assert replica_base(name.split("-")[0]) == module, f"{name}: runs services.{module}"
        assert "build" in config["services"][name], f"{name}: must build the framebus image"
        assert importlib.util.find_spec(f"services.{module}.__main__"), f"services.{module} has no __main__"
    assert module_of(image_cmd()) in SETTINGS, f"the image's CMD {image_cmd()} runs no framebus service"


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_restart_and_stop_grace(variant: Variant) -> None:
    config = load_variant(variant)
    for name, spec in config["services"].items():
        if name in ONE_SHOT:
            continue
        assert spec.get("restart") == "unless-stopped", f"{name}: restart {spec.get('restart')!r}"
        grace = duration_seconds(str(spec.get("stop_grace_period", "10s")))
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


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_no_two_services_publish_the_same_host_port(variant: Variant) -> None:
    """Third-party services (the load balancer, redis, the RTSP camera) included."""
    published: dict[tuple[str | None, int], str] = {}
    for name, spec in load_variant(variant)["services"].items():
        for entry in spec.get("ports") or []:
            host_ip, host, _ = parse_port(entry)
            if host is None:
                continue
            assert (host_ip, host) not in published, (
                f"{name} and {published[(host_ip, host)]} publish {entry}"
            )
            published[(host_ip, host)] = name


# ---- the tests: the replicas override's load balancer (docker/haproxy) ---------------------------


def haproxy_sections(path: Path) -> dict[str, list[str]]:
    """``"backend gateways"`` -> its directive lines (comments and blank lines dropped)."""
    sections: dict[str, list[str]] = {}
    current = ""
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line:
            continue
        if not line[0].isspace():
            current = " ".join(line.split())
            sections[current] = []
        else:
            sections[current].append(" ".join(line.split()))
    return sections


def _bind_port(lines: Sequence[str]) -> int:
    (bind,) = (line for line in lines if line.startswith("bind "))
    return int(bind.split()[1].rsplit(":", 1)[1])


def lb_frontend_port() -> int:
    """The port the balancer's frontend listens on (``bind :PORT`` in ``frontend framebus``)."""
    return _bind_port(haproxy_sections(LB_CONFIG)["frontend framebus"])


def test_the_lb_balances_exactly_the_gateway_replicas(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_variant(REPLICAS)
    replicas = {
        name: listen_port(container_settings(monkeypatch, module, config["services"][name]), module)
        for name, module in framebus_services(config).items()
        if module == "gateway"
    }
    assert len(replicas) >= 2, f"the replicas override runs {sorted(replicas)}"
    servers = [line.split() for line in haproxy_sections(LB_CONFIG)["backend gateways"]]
    addresses = {words[2] for words in servers if words[0] == "server"}
    assert addresses == {f"{name}:{port}" for name, port in replicas.items()}, (
        f"{LB_CONFIG.relative_to(ROOT)} balances {sorted(addresses)}, compose runs {replicas}"
    )
    for words in servers:
        if words[0] == "server":
            assert "check" in words, f"{words[1]} is not health-checked"
            # Docker's DNS at run time: the balancer starts before, and follows, its replicas.
            assert "resolvers" in words and "init-addr" in words, f"{words[1]}: resolved only at start"


def test_the_lb_service_builds_haproxy_and_publishes_its_frontend() -> None:
    lb = load_variant(REPLICAS)["services"]["lb"]
    context = build_context(lb)
    assert context is not None and (ROOT / context / "Dockerfile").exists(), f"lb builds {context}"
    (stage,) = parse_dockerfile(ROOT / context / "Dockerfile")
    assert stage.base == "debian:bookworm-slim", "the stand-in bases include debian:bookworm-slim only"
    assert any(re.search(r"apt-get install .*\bhaproxy\b", run) for run in stage.args("RUN"))
    assert stage.args("USER") and stage.args("USER")[-1].split(":")[0] not in ("root", "0")
    copied = {Path(context, source).as_posix() for source in stage.context_sources()}
    assert LB_CONFIG.relative_to(ROOT).as_posix() in copied, f"{context}/Dockerfile copies {copied}"
    assert "/etc/haproxy/framebus.cfg" in " ".join(stage.args("COPY") + stage.args("ENTRYPOINT"))
    targets = {parse_port(entry)[2] for entry in lb.get("ports") or []}
    assert lb_frontend_port() in targets, f"lb publishes {targets}, HAProxy listens on {lb_frontend_port()}"
    for key in ("cap_drop", "security_opt", "init"):
        assert key in lb, f"lb: {key} missing (every service runs without capabilities)"


def test_the_lb_healthcheck_asks_haproxys_monitor_uri() -> None:
    """Healthy while a replica is up: the script calls the status port's monitor URI."""
    lb = load_variant(REPLICAS)["services"]["lb"]
    test = lb["healthcheck"]["test"]
    assert test[0] == "CMD", test
    status = haproxy_sections(LB_CONFIG)["listen status"]
    (monitor_uri,) = (line.split()[1] for line in status if line.startswith("monitor-uri "))
    assert any(line.startswith("monitor fail if") and "nbsrv(gateways)" in line for line in status)
    context = ROOT / str(build_context(lb))
    (stage,) = parse_dockerfile(context / "Dockerfile")
    copies = [copy.split() for copy in stage.args("COPY") if not copy.startswith("--")]
    (source,) = (words[0] for words in copies if words[-1] == test[1])  # the image's copy of it
    text = (context / source).read_text()
    assert f"/dev/tcp/127.0.0.1/{_bind_port(status)}" in text and f"GET {monitor_uri} " in text


def test_the_lb_config_keeps_the_example_policy_and_haproxy_accepts_it(tmp_path: Path) -> None:
    """The policy of deploy/haproxy/haproxy.cfg (health, retries, timeouts) and a valid config."""
    ours, example = haproxy_sections(LB_CONFIG), haproxy_sections(EXAMPLE_LB_CONFIG)
    for section in ("defaults", "backend gateways"):
        policy = {line for line in example[section] if not line.startswith("server ")}
        missing = policy - set(ours[section])
        assert not missing, f"{section}: the example's {sorted(missing)} missing from {LB_CONFIG.name}"
    haproxy = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")
    if haproxy is None:
        pytest.fail("haproxy is not installed (apt-get install haproxy)", pytrace=False)
    result = subprocess.run([haproxy, "-c", "-f", str(LB_CONFIG)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


# ---- the tests: same topology as `make run` ---------------------------------------------------------


def test_procfile_and_compose_run_the_same_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    procfile = ROOT / "Procfile"
    assert procfile.exists(), "Procfile (make run) is missing"
    processes = read_procfile(procfile)
    config = load_variant(DEFAULT)
    services = framebus_services(config)
    assert set(processes) == set(services), f"Procfile {sorted(processes)} vs compose {sorted(services)}"
    dotenv = read_dotenv(DOTENV)  # honcho loads .env as well
    for name, process in processes.items():
        module = services[name]
        assert process.module == f"services.{module}", (
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
    first = next(iter(read_procfile(extra).values()))
    assert first.module == "services.capture"
    local = load_settings(monkeypatch, CaptureSettings, {**read_dotenv(DOTENV), **first.env})
    config = load_variant(CAMERAS)
    added = sorted(set(framebus_services(config)) - set(framebus_services(load_variant(DEFAULT))))
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
    slim = re.fullmatch(r"python:(\d+)\.(\d+)-slim(?:-\w+)?", final.base)
    assert slim, f"the runtime stage should be an official slim Python image, not {final.base}"
    assert (int(slim[1]), int(slim[2])) >= minimum_python(), f"{final.base} is older than requires-python"
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
    for run in final.args("RUN"):
        assert not re.search(r"\bpip3? install\b", run), f"final stage installs with pip: {run}"
        for install in re.findall(r"(?:apt-get|apt|apk)\s+(?:install|add)\s+([^&;|]*)", run):
            assert not BUILD_TOOLS.search(install), f"final stage installs build tools: {install}"


def test_dockerignore_keeps_the_context_small_but_complete() -> None:
    ignore = DockerIgnore.read(ROOT / ".dockerignore")
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
        assert ignore.excludes(junk), f"{junk} would be sent to the Docker daemon"
    sources = [source for stage in parse_dockerfile(DOCKERFILE) for source in stage.context_sources()]
    assert sources, "the Dockerfile copies nothing from the context"
    for source in sources:
        assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"
        for rel in context_files(ROOT / source):
            assert not ignore.excludes(rel), f".dockerignore drops {rel}, which the Dockerfile copies"
