"""The Redis backends the capacity case runs against: one redis-server, or a Redis Cluster of
``masters`` nodes on this host (no pytest, unlike tests/fixtures/cluster.py, which the bench
cannot import without the test extra), and the commands they served (INFO commandstats)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Protocol

import redis

from bench.procs import Proc, Redis, ServiceDied, wait_for
from tests.support.net import free_port

CLUSTER_MASTERS = 3


class Backend(Protocol):
    key: str
    url: str

    def procs(self) -> list[Proc]: ...

    def ports(self) -> list[int]: ...

    def stop(self) -> None: ...


class OneRedis:
    key = "redis"

    def __init__(self, workdir: Path) -> None:
        self.server = Redis(workdir)
        self.url = self.server.url

    def procs(self) -> list[Proc]:
        return [self.server]

    def ports(self) -> list[int]:
        return [self.server.port]

    def stop(self) -> None:
        self.server.stop()


class ClusterNode(Proc):
    """One ``redis-server --cluster-enabled yes`` on free ports, persisting nothing."""

    def __init__(self, workdir: Path, index: int) -> None:
        self.port, bus_port = free_port(), free_port()
        argv = [_binary("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--cluster-enabled", "yes", "--cluster-port", str(bus_port)]
        argv += ["--cluster-config-file", str(workdir / f"nodes-{self.port}.conf")]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(workdir), "--daemonize", "no"]
        argv += ["--logfile", ""]
        super().__init__(f"redis-node{index}", argv, dict(os.environ), workdir)


class ClusterRedis:
    """``masters`` cluster nodes joined with ``redis-cli --cluster create``."""

    key = "cluster"

    def __init__(self, workdir: Path, masters: int = CLUSTER_MASTERS) -> None:
        self.nodes: list[ClusterNode] = []
        try:
            self.nodes = [ClusterNode(workdir, index) for index in range(masters)]
            for node in self.nodes:
                wait_for(partial(_answers, node), 10.0, f"{node.name} PING")
            self._create()
            wait_for(self._ready, 30.0, "cluster_state:ok on every node")
        except BaseException:
            self.stop()
            raise
        self.url = "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def _create(self) -> None:
        argv = [_binary("redis-cli"), "--cluster", "create"]
        argv += [f"127.0.0.1:{node.port}" for node in self.nodes]
        argv += ["--cluster-replicas", "0", "--cluster-yes"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise ServiceDied(f"redis-cli --cluster create failed:\n{(done.stdout + done.stderr)[-2000:]}")

    def _ready(self) -> bool:
        for node in self.nodes:
            node.check()
            with _client(node.port) as client:
                info = client.execute_command("CLUSTER INFO")
            if info.get("cluster_state") != "ok" or int(info.get("cluster_known_nodes", 0)) != len(
                self.nodes
            ):
                return False
        return True

    def procs(self) -> list[Proc]:
        return list(self.nodes)

    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    def stop(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.stop()


def _binary(name: str) -> str:
    found = shutil.which(name) or f"/usr/bin/{name}"
    if not os.path.exists(found):
        raise SystemExit(f"{name} is not installed: run `make setup`")
    return found


def _client(port: int) -> redis.Redis:
    return redis.Redis(port=port, socket_timeout=5.0, socket_connect_timeout=2.0, decode_responses=True)


def _answers(node: ClusterNode) -> bool:
    node.check()
    with _client(node.port) as client:
        return bool(client.ping())


def flush(backend: Backend) -> None:
    """Empty every node, so a cell's readers never start from the last cell's frames."""
    for port in backend.ports():
        with _client(port) as client:
            client.flushall()


class CommandCounts:
    """Calls per command, summed over the nodes (INFO commandstats), over connections opened
    before the window: so the only call of ours inside it is one INFO per node, left out."""

    def __init__(self, backend: Backend) -> None:
        self.clients = [_client(port) for port in backend.ports()]

    def now(self) -> dict[str, int]:
        calls: dict[str, int] = {}
        for client in self.clients:
            for name, stats in client.info("commandstats").items():
                command = name.removeprefix("cmdstat_")
                calls[command] = calls.get(command, 0) + int(stats["calls"])
        calls.pop("info", None)
        return calls

    def close(self) -> None:
        for client in self.clients:
            client.close()


@contextlib.contextmanager
def started(make: Callable[[], Backend]) -> Iterator[Backend]:
    backend = make()
    try:
        yield backend
    finally:
        backend.stop()
