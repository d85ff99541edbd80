"""Fixtures for the one-bus tests: a Redis Cluster, HAProxy in front of gateways, network namespaces.

Each fixture stops and removes everything it started, also when the test fails.

* ``redis_cluster`` -> :class:`RedisClusterProcesses` (3 masters + 3 replicas, ``.url`` is a
  ``redis+cluster://`` URL).
* ``start_haproxy(backends, balance="roundrobin")`` -> :class:`HaproxyProcess`.
* ``netns_hosts(roles)`` -> :class:`Hosts` (root only; skips otherwise).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.cluster import RedisClusterProcesses
from tests.fixtures.haproxy import HaproxyProcess
from tests.fixtures.netns import Hosts, netns_unavailable_reason


@pytest.fixture
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterProcesses]:
    """A fresh 3-master, 3-replica Redis Cluster on free ports, killed at the end."""
    cluster = RedisClusterProcesses(tmp_path_factory.mktemp("cluster"))
    try:
        yield cluster.start()
    finally:
        cluster.kill()


@pytest.fixture
def start_haproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., HaproxyProcess]]:
    """Factory: ``start_haproxy([(host, port), …], balance="roundrobin")`` starts HAProxy in front
    of those gateways on a free port (health checks on /readyz); all are stopped at the end."""
    started: list[HaproxyProcess] = []

    def start(backends: list[tuple[str, int]], balance: str = "roundrobin", **options: Any) -> HaproxyProcess:
        proxy = HaproxyProcess(tmp_path_factory.mktemp("haproxy"), backends, balance, **options)
        started.append(proxy)
        return proxy.start()

    try:
        yield start
    finally:
        for proxy in started:
            proxy.stop()


@pytest.fixture
def netns_hosts(tmp_path: Path) -> Iterator[Callable[[list[str]], Hosts]]:
    """Factory: ``netns_hosts(["capture", "redis", "viewer"])`` builds those hosts (network
    namespaces on one bridge). Skips unless root. Everything is removed at the end, also on failure."""
    if (reason := netns_unavailable_reason()) is not None:
        pytest.skip(reason)
    built: list[Hosts] = []

    def build(roles: list[str]) -> Hosts:
        hosts = Hosts(tmp_path / f"hosts{len(built)}", roles)
        hosts.workdir.mkdir(parents=True)
        built.append(hosts)
        return hosts.build()

    try:
        yield build
    finally:
        for hosts in built:
            hosts.destroy()
    leftovers = [name for hosts in built for name in hosts.leftovers()]
    assert not leftovers, f"namespaces left behind: {leftovers}"
