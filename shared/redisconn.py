"""One way to connect to Redis for every part of framebus (services, client library, bench).

``REDIS_URL`` names either one server (``redis://``, ``rediss://``, ``unix://``) or a Redis
Cluster (``redis+cluster://[[user]:password@]host:port[,host:port…]``, ``rediss+cluster://``
for TLS). The cluster hosts are seeds: the client asks any of them for the slot map and then
talks to every master directly, following failovers by itself. Callers never construct a
client themselves, so the same code runs on one server and on a cluster.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

RedisClient = aioredis.Redis | RedisCluster


@dataclass(frozen=True, slots=True)
class ClusterUrl:
    """A ``redis+cluster://`` URL taken apart: ``base_url`` is a plain redis URL of the first
    seed (credentials and query included), ``seeds`` every (host, port) listed."""

    base_url: str
    seeds: tuple[tuple[str, int], ...]


def is_cluster_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() in CLUSTER_SCHEMES


def parse_cluster_url(url: str) -> ClusterUrl:
    """Splits ``redis+cluster://[userinfo@]h1:p1[,h2:p2…][/0][?query]``; ValueError says what is wrong.

    Parsed by hand because ``urllib`` does not accept a comma-separated host list.
    """
    scheme, _, rest = url.partition("://")
    plain_scheme = CLUSTER_SCHEMES.get(scheme.lower())
    if plain_scheme is None:
        raise ValueError("a cluster URL starts with redis+cluster:// or rediss+cluster://")
    location, query_mark, query = rest.partition("?")
    location, _, path = location.partition("/")
    if path not in ("", "0"):
        raise ValueError("a Redis Cluster has only database 0 (drop the /N path)")
    userinfo, at, hosts = location.rpartition("@")
    seeds = tuple(_host_port(item) for item in hosts.split(","))
    first_host, first_port = seeds[0]
    shown_host = f"[{first_host}]" if ":" in first_host else first_host
    base_url = f"{plain_scheme}://{userinfo}{at}{shown_host}:{first_port}{query_mark}{query}"
    return ClusterUrl(base_url, seeds)


def _host_port(item: str) -> tuple[str, int]:
    host, colon, port_text = item.strip().rpartition(":")
    host = host.strip("[]")  # an IPv6 address is written [::1]:7000
    if not colon or not host:
        raise ValueError(f"cluster seed {item!r} must be host:port")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"cluster seed {item!r} has no valid port")
    return host, int(port_text)


def connect(url: str, *, socket_timeout: float, connect_timeout: float = 2.0, **options: Any) -> RedisClient:
    """An asyncio client for ``url``: one immediate retry on a fresh connection (a pooled socket
    that died with a Redis restart); anything slower is the caller's own backoff's job.

    For a cluster URL the client is :class:`redis.asyncio.cluster.RedisCluster`: that one retry
    also re-reads the slot map, which is how a promoted replica is found after a failover.
    """
    common: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        "retry": Retry(NoBackoff(), 1),
        **options,
    }
    if not is_cluster_url(url):
        return aioredis.Redis.from_url(url, **common)
    cluster_url = parse_cluster_url(url)
    other_seeds = [ClusterNode(host, port) for host, port in cluster_url.seeds[1:]]
    # The client follows MOVED replies itself and re-reads the slot map every 5th (redis-py's
    # default); a failed master's connection errors make it re-read the map at once. Re-reading
    # on every MOVED (reinitialize_steps=1) closed all the client's connections each time,
    # failing the other cameras' commands in flight, and a fresh client's first misrouted
    # commands kept it doing so (bench/capacity.py: 3 to 11 map reloads a second).
    # require_full_coverage=False: while one master's slots fail over, a refreshed map with a
    # hole in it still serves the cameras on the other masters.
    return RedisCluster.from_url(
        cluster_url.base_url,
        startup_nodes=other_seeds or None,
        require_full_coverage=False,
        **common,
    )


def entry_age(entry_id: bytes) -> float:
    """Seconds since a stream entry was added: its auto id starts with Redis's clock in ms."""
    return max(0.0, time.time() - int(entry_id.split(b"-")[0]) / 1000)
