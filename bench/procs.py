"""A small launcher for the bench: redis-server and our services as processes, /proc sampling.

Independent of pytest on purpose (``make bench`` runs without the test extra's fixtures); the
plain helpers it shares with the tests (ports, HTTP GET, polling, the services' child
environment) come from ``tests.support``, which imports no pytest.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.support.children import PORT_VARS, REPO_ROOT, service_env
from tests.support.net import free_port, http_get
from tests.support.waiting import wait_until

CLK_TCK = os.sysconf("SC_CLK_TCK")
# One /metrics sample: (name, labels, value); a scrape holds each service's samples by name.
Sample = tuple[str, dict[str, str], float]
Scrape = dict[str, list[Sample]]


class ServiceDied(RuntimeError):
    """A process the bench started exited while it was needed."""


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``predicate``; connection errors mean "not yet", ServiceDied ends the wait at once."""
    wait_until(predicate, timeout, retry_on=(OSError, ValueError), message=what)


class Proc:
    """One child process with its log file; CPU and memory read from /proc."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                argv,
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C on the bench must not hit the children first
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def check(self) -> bool:
        """True while running; raises ServiceDied (with the log's tail) once it has exited."""
        if not self.running:
            raise ServiceDied(f"{self.name} exited with {self.popen.returncode}\n{self.log_tail()}")
        return True

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join("    | " + line for line in text.splitlines()[-lines:])

    def cpu_seconds(self) -> float:
        """utime + stime of the process (its threads included)."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def memory_kib(self, key: str) -> int:
        """VmRSS (now) or VmHWM (peak) in KiB."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def stop(self, timeout: float = 5.0) -> None:
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


class Service(Proc):
    """``python -m services.<name>`` on a free port."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path, label: str | None = None) -> None:
        self.port = free_port()
        child_env = service_env(PORT_VARS[name], self.port, env)
        super().__init__(label or name, [sys.executable, "-m", f"services.{name}"], child_env, log_dir)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get_json(self, path: str) -> Any:
        return json.loads(http_get(self.url + path)[1])

    def wait_status(self, path: str, timeout: float = 20.0) -> None:
        def ok() -> bool:
            self.check()
            return http_get(self.url + path, timeout=1.0)[0] == 200

        try:
            wait_for(ok, timeout, f"{self.name} {path} 200")
        except TimeoutError as exc:
            raise ServiceDied(f"{exc}\n{self.log_tail()}") from None

    def metrics(self) -> list[Sample]:
        _, body = http_get(self.url + "/metrics")
        return [
            (s.name, dict(s.labels), float(s.value))
            for family in text_string_to_metric_families(body.decode())
            for s in family.samples
        ]


class Redis(Proc):
    def __init__(self, log_dir: Path) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not os.path.exists(binary):
            raise SystemExit("redis-server is not installed: run `make setup`")
        self.port = free_port()
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        argv += ["--dir", str(log_dir), "--daemonize", "no", "--logfile", ""]
        super().__init__("redis-server", argv, dict(os.environ), log_dir)
        wait_for(self._ping, 10.0, "redis-server PING")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _ping(self) -> bool:
        self.check()
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")


def metric_sum(samples: list[Sample], name: str, **labels: str) -> float:
    return sum(v for n, lab, v in samples if n == name and all(lab.get(k) == w for k, w in labels.items()))


def drops_by_reason(samples: list[Sample]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, labels, value in samples:
        if name == "framebus_frames_dropped_total":
            key = f"{labels.get('stage')}/{labels.get('reason')}"
            out[key] = out.get(key, 0.0) + value
    return out


class CpuWindow:
    """CPU seconds each process spent between ``start()`` and ``stop()``."""

    def __init__(self, procs: list[Proc]) -> None:
        self.procs = procs
        self._start: dict[str, float] = {}
        self.seconds: dict[str, float] = {}
        self.wall = 0.0
        self._t0 = 0.0

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._start = {p.name: p.cpu_seconds() for p in self.procs}

    def stop(self) -> None:
        self.wall = time.monotonic() - self._t0
        self.seconds = {p.name: p.cpu_seconds() - self._start[p.name] for p in self.procs}


def hold(seconds: float, procs: list[Proc]) -> None:
    """Sleep ``seconds`` while checking every process is alive (raises ServiceDied at once)."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        for proc in procs:
            proc.check()
        time.sleep(min(0.25, left))
