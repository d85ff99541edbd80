"""REDIS_URL names one server or a Redis Cluster (``redis+cluster://h:p[,h:p…]``): unit tests."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from services.viewer.settings import ViewerSettings
from shared.redisconn import connect, parse_cluster_url
from shared.settings import validate_redis_url


def test_a_cluster_url_lists_its_seeds_and_keeps_credentials_and_options() -> None:
    parsed = parse_cluster_url("redis+cluster://user:pw@10.0.0.1:7000,10.0.0.2:7001?ssl_cert_reqs=none")
    assert parsed.seeds == (("10.0.0.1", 7000), ("10.0.0.2", 7001))
    assert parsed.base_url == "redis://user:pw@10.0.0.1:7000?ssl_cert_reqs=none"


def test_a_tls_cluster_url_with_an_ipv6_seed() -> None:
    parsed = parse_cluster_url("rediss+cluster://[::1]:7000/0")
    assert parsed.seeds == (("::1", 7000),)
    assert parsed.base_url == "rediss://[::1]:7000"


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("redis+cluster://10.0.0.1", "must be host:port"),
        ("redis+cluster://10.0.0.1:7000,", "must be host:port"),
        ("redis+cluster://10.0.0.1:70000", "no valid port"),
        ("redis+cluster://10.0.0.1:7000/2", "only database 0"),
        ("http://10.0.0.1:7000", "must start with redis://"),
    ],
)
def test_a_bad_redis_url_is_refused_with_the_reason(url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        validate_redis_url(url)


def test_a_service_refuses_a_bad_cluster_url_at_startup() -> None:
    with pytest.raises(ValidationError, match="must be host:port"):
        ViewerSettings(redis_url="redis+cluster://nohostport")


async def test_connect_returns_a_cluster_client_only_for_a_cluster_url() -> None:
    cluster = connect("redis+cluster://127.0.0.1:7000,127.0.0.1:7001", socket_timeout=1.0)
    single = connect("redis://127.0.0.1:6379/0", socket_timeout=1.0)
    try:
        assert isinstance(cluster, RedisCluster)
        assert {node.port for node in cluster.nodes_manager.startup_nodes.values()} == {7000, 7001}
        assert isinstance(single, Redis)
    finally:
        await cluster.aclose()
        await single.aclose()
