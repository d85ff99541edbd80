"""framebus on a real Redis Cluster (3 masters + 3 replicas): capture -> cluster -> viewer."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import cast

import numpy as np
import pytest
from redis.cluster import RedisCluster

import framebus
from shared.registry import REGISTRY_KEY
from shared.wire import stream_key
from tests.fixtures import wait_until
from tests.fixtures.cluster import ClusterNodeProcess, RedisClusterProcesses, keys_on_distinct_masters
from tests.fixtures.processes import ServiceProcess
from tests.support.observe import decode, live_snapshot

Start = Callable[..., ServiceProcess]

# Small and slow enough that three cameras and a viewer share two cores comfortably.
LIGHT_CAMERA = {"CAPTURE_WIDTH": "640", "CAPTURE_HEIGHT": "360", "CAPTURE_FPS": "10"}


def start_cameras(
    start_service: Start, cluster: RedisClusterProcesses, cameras: list[str]
) -> list[ServiceProcess]:
    common = {"TRANSPORT": "redis", "REDIS_URL": cluster.url, **LIGHT_CAMERA}
    return [start_service("capture", {**common, "CAMERA_ID": camera}) for camera in cameras]


def start_viewer(start_service: Start, cluster: RedisClusterProcesses, cameras: list[str]) -> ServiceProcess:
    env = {"TRANSPORT": "redis", "REDIS_URL": cluster.url, "CAMERA_ID": cameras[0]}
    return start_service("viewer", {**env, "VIEWER_CAMERAS": ",".join(cameras[1:])})


def viewer_seq(viewer: ServiceProcess, camera: str) -> int:
    return live_snapshot(viewer, camera)[0]


def wait_frames_advance(viewer: ServiceProcess, camera: str, count: int, timeout: float = 10.0) -> None:
    """Until the viewer has shown ``count`` more frames of ``camera`` than it has now."""
    start = viewer_seq(viewer, camera)
    wait_until(lambda: viewer_seq(viewer, camera) >= start + count, timeout=timeout, message=viewer.log_tail)


def dropped(service: ServiceProcess, camera: str, reason: str) -> float:
    return service.metric("framebus_frames_dropped_total", {"camera": camera, "reason": reason}) or 0.0


def test_cameras_on_different_masters_reach_the_viewer(
    redis_cluster: RedisClusterProcesses, start_service: Start
) -> None:
    cameras = keys_on_distinct_masters(redis_cluster, stream_key, 3)
    captures = start_cameras(start_service, redis_cluster, cameras)
    viewer = start_viewer(start_service, redis_cluster, cameras)

    for camera in cameras:
        _, first = live_snapshot(viewer, camera)
        assert decode(first).shape == (600, 600, 3)
        wait_frames_advance(viewer, camera, 10)
        assert live_snapshot(viewer, camera)[1] != first, f"the picture of {camera} did not change"
    for capture in captures:
        capture.wait_ready()
    viewer.wait_ready()

    # Each stream really sits on its own master, and the registry set (one key) lists all.
    masters = {redis_cluster.master_of(stream_key(camera)).name for camera in cameras}
    assert len(masters) == 3
    for camera in cameras:
        with redis_cluster.master_of(stream_key(camera)).client() as node:
            assert node.xlen(stream_key(camera)) >= 1
    client = RedisCluster.from_url(f"redis://{redis_cluster.nodes[0].name}")
    assert set(client.zrange(REGISTRY_KEY, 0, -1)) == {camera.encode() for camera in cameras}
    client.close()


def test_frames_flow_again_after_a_master_is_killed_and_its_replica_promoted(
    redis_cluster: RedisClusterProcesses, start_service: Start
) -> None:
    # The bystander shares its master with the camera registry, so the victim's master holds
    # nothing but the victim's stream: the bystander's capture should not notice the failover.
    cameras = keys_on_distinct_masters(redis_cluster, stream_key, 3)
    registry_master = redis_cluster.master_of(REGISTRY_KEY)
    bystander = next(c for c in cameras if redis_cluster.master_of(stream_key(c)) is registry_master)
    victim = next(c for c in cameras if c != bystander)
    captures = dict(
        zip(
            [victim, bystander], start_cameras(start_service, redis_cluster, [victim, bystander]), strict=True
        )
    )
    viewer = start_viewer(start_service, redis_cluster, [victim, bystander])
    for camera in (victim, bystander):
        wait_frames_advance(viewer, camera, 5)

    killed = redis_cluster.kill_master_of(stream_key(victim))
    killed_at = time.monotonic()
    seq_at_kill = viewer_seq(viewer, victim)

    # The replica takes over the slots (node timeout 1 s + election) and frames flow again.
    def replacement() -> ClusterNodeProcess | None:
        node = redis_cluster.master_of(stream_key(victim))
        return node if node is not killed else None

    promoted = wait_until(replacement, timeout=10)
    assert promoted is not None
    wait_until(lambda: viewer_seq(viewer, victim) >= seq_at_kill + 10, timeout=15, message=viewer.log_tail)
    recovered_after = time.monotonic() - killed_at
    print(
        f"{victim}: {killed.name} killed, {promoted.name} promoted, frames again after {recovered_after:.1f}s"
    )
    assert recovered_after < 10, "frames took longer than a few seconds to come back"

    # The gap is counted on both sides: frames capture could not write, seqs the viewer never saw.
    assert dropped(captures[victim], victim, "transport_error") > 0
    assert dropped(viewer, victim, "upstream_gap") > 0
    # Cameras on the healthy masters kept flowing, without a single failed publish.
    wait_frames_advance(viewer, bystander, 5)
    assert dropped(captures[bystander], bystander, "transport_error") == 0
    captures[victim].wait_ready(timeout=10)
    viewer.wait_ready(timeout=10)
    with promoted.client() as node:
        assert node.info("replication")["role"] == "master"
        assert node.xlen(stream_key(victim)) >= 1
    assert not killed.running


def test_the_client_library_publishes_and_subscribes_on_a_cluster(
    redis_cluster: RedisClusterProcesses,
) -> None:
    """A consumer's REDIS_URL may name a cluster, as the services' does (the library refused it)."""
    image = np.full((120, 160, 3), 90, np.uint8)
    with framebus.Publisher("libcam", redis_cluster.url) as publisher:
        publisher.publish(image)
        publisher.flush()
        subscription = framebus.subscribe("libcam", redis_cluster.url, newest=False, timeout=5)
        try:
            frames = iter(subscription)
            assert next(frames).seq == 1
            for _ in range(3):
                publisher.publish(image)
                publisher.flush()
            assert [next(frames).seq for _ in range(3)] == [2, 3, 4]
        finally:
            subscription.close()
    assert publisher.stats.dropped_total == 0, publisher.stats


def getkeys_calls(cluster: RedisClusterProcesses) -> int:
    """COMMAND GETKEYS served by the cluster's running nodes so far."""
    calls = 0
    for node in cluster.running_nodes():
        with node.client() as client:
            stats = cast(dict[str, dict[str, int]], client.info("commandstats"))
        calls += stats.get("cmdstat_command|getkeys", {}).get("calls", 0)
    return calls


@pytest.mark.parametrize("group", [None, "pool"], ids=["reader", "worker_pool"])
def test_reading_a_camera_on_a_cluster_asks_no_node_for_keys(
    redis_cluster: RedisClusterProcesses, group: str | None
) -> None:
    """XREAD's and XREADGROUP's keys move with their arguments: redis-py asked a node for them
    (COMMAND GETKEYS, twice) before every read, until the readers named the stream's master."""
    image = np.full((120, 160, 3), 90, np.uint8)
    camera = f"keycam-{group}"
    with framebus.Publisher(camera, redis_cluster.url) as publisher:
        publisher.publish(image)
        publisher.flush()
        subscription = framebus.subscribe(camera, redis_cluster.url, newest=False, group=group, timeout=5)
        with subscription:
            frames = iter(subscription)
            if group is None:
                assert next(frames).seq == 1
            else:  # the pool reads what comes after its group was made; make it now, as "$" does
                with RedisCluster.from_url(f"redis://{redis_cluster.nodes[0].name}") as admin:
                    admin.xgroup_create(stream_key(camera), group, id="$")
            before = getkeys_calls(redis_cluster)
            seqs = []
            for _ in range(10):
                publisher.publish(image)
                publisher.flush()
                seqs.append(next(frames).seq)
            after = getkeys_calls(redis_cluster)
    assert seqs == list(range(2, 12))
    assert after - before == 0
