"""Fixtures for the one-bus tests: a Redis Cluster, HAProxy in front of gateways, network namespaces.

Each fixture stops and removes everything it started, also when the test fails.

* ``redis_cluster`` -> :class:`RedisClusterProcesses` (3 masters + 3 replicas, ``.url`` is a
  ``redis+cluster://`` URL).
* ``start_haproxy(backends, balance="roundrobin")`` -> :class:`HaproxyProcess`.
* ``netns_hosts`` -> :class:`Hosts` (root only; skips otherwise).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.cluster import RedisClusterProcesses


@pytest.fixture
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterProcesses]:
    """A fresh 3-master, 3-replica Redis Cluster on free ports, killed at the end."""
    cluster = RedisClusterProcesses(tmp_path_factory.mktemp("cluster"))
    try:
        yield cluster.start()
    finally:
        cluster.kill()
