"""The delaying TCP relay the many-hosts tests use instead of netem: it must delay, not reorder."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.fixtures import free_port, wait_until
from tests.fixtures.servers import RedisServer
from tests.fixtures.util import port_open

RELAY_SCRIPT = Path(__file__).resolve().parent / "delay_relay.py"


@pytest.fixture
def relay_in_front_of(redis_server: RedisServer) -> Iterator[int]:
    """The relay on a free loopback port, 50 ms toward the client, 0 toward Redis."""
    port = free_port()
    argv = [sys.executable, str(RELAY_SCRIPT), "--listen", f"127.0.0.1:{port}"]
    argv += ["--target", f"127.0.0.1:{redis_server.port}", "--down-delay-ms", "50"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: port_open(port), timeout=10)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def round_trip(client: redis.Redis) -> float:
    started = time.perf_counter()
    client.ping()
    return time.perf_counter() - started


def test_the_relay_delays_replies_by_the_given_time(
    relay_in_front_of: int, redis_server: RedisServer
) -> None:
    direct = redis.Redis(port=redis_server.port)
    relayed = redis.Redis(port=relay_in_front_of)
    relayed.ping()  # the connection itself is not what is measured
    relayed_times = sorted(round_trip(relayed) for _ in range(10))
    direct_times = sorted(round_trip(direct) for _ in range(10))
    added = relayed_times[5] - direct_times[5]
    assert 0.050 <= added < 0.150, f"added {added * 1000:.1f} ms"
    direct.close()
    relayed.close()


def test_the_relay_keeps_order_and_every_byte_of_large_replies(relay_in_front_of: int) -> None:
    client = redis.Redis(port=relay_in_front_of)
    payloads = [bytes([index]) * (300_000 + index) for index in range(8)]
    for index, payload in enumerate(payloads):
        client.xadd("s", {"jpeg": payload, "i": index})
    entries = client.xrange("s")
    assert entries is not None
    assert [fields[b"jpeg"] for _, fields in entries if fields is not None] == payloads
    pipe = client.pipeline(transaction=False)
    for index in range(50):
        pipe.echo(str(index))
    assert pipe.execute() == [str(index).encode() for index in range(50)]
    client.close()
