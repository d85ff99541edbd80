"""Shared pytest fixtures: real Redis, a real RTSP camera, our services as subprocesses.

Every fixture here stops what it started, even when the test fails.

* ``free_port()`` / ``wait_until()`` are plain helpers
  (``from tests.fixtures import free_port, wait_until``); the factories' types are
  ``tests.fixtures.RtspFactory`` / ``ServiceFactory``.
* ``start_redis(port=None) -> RedisServer``; ``redis_server`` is one started for the test,
  ``redis_url`` its URL.
* ``rtsp_server(width=640, height=480, fps=30, path="/test", port=0) -> RtspServer``;
  ``rtsp_url`` is a default one's URL.
* ``start_service(name, env=None, port_var=None, *, port=None, wait=True, timeout=15.0)``
  ``-> ServiceProcess`` launches ``python -m services.<name>``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.factories import RtspFactory, ServiceFactory
from tests.fixtures.processes import ServiceProcess, start_service_process
from tests.fixtures.servers import RedisServer, RtspServer, gst_rtsp_available, killed_at_exit


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests using the RTSP fixtures get the ``rtsp`` marker (select/deselect with -m)."""
    for item in items:
        if {"rtsp_server", "rtsp_url"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.rtsp)


# --- Redis -----------------------------------------------------------------------------------


@pytest.fixture
def start_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., RedisServer]]:
    """Factory: ``start_redis(port=None)`` starts another redis-server; all are stopped at the end."""
    with killed_at_exit() as track:

        def start(port: int | None = None) -> RedisServer:
            return track(RedisServer(tmp_path_factory.mktemp("redis"), port=port)).start()

        yield start


@pytest.fixture
def redis_server(start_redis: Callable[..., RedisServer]) -> RedisServer:
    """A fresh, empty redis-server on a free port for this test."""
    return start_redis()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


# --- RTSP ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _gst_rtsp_checked() -> None:
    if not gst_rtsp_available():
        pytest.fail(
            "GStreamer RTSP server not importable by /usr/bin/python3: run `scripts/setup.sh test`",
            pytrace=False,
        )


@pytest.fixture
def rtsp_server(tmp_path_factory: pytest.TempPathFactory, _gst_rtsp_checked: None) -> Iterator[RtspFactory]:
    """Factory: ``rtsp_server(width=640, height=480, fps=30, path="/test", port=0)`` starts
    ``docker/rtsp-demo/rtsp_camera.py`` and returns a running :class:`RtspServer` (``.url``, ``.port``,
    ``.shape``, ``.kill()``, ``.stop()``, ``.stop_signal()``, ``.cont()``, ``.restart()``)."""
    with killed_at_exit() as track:

        def start(**options: Any) -> RtspServer:
            return track(RtspServer(tmp_path_factory.mktemp("rtsp"), **options)).start()

        yield start


@pytest.fixture
def rtsp_url(rtsp_server: RtspFactory) -> str:
    """URL of a 640x480 30 fps test stream."""
    return rtsp_server().url


# --- our services ----------------------------------------------------------------------------


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[ServiceFactory]:
    """Factory: ``start_service("gateway", {"GATEWAY_TOKEN": "t"})`` runs ``python -m services.gateway``
    on a free port, waits for /livez (15 s, log tail on failure) and returns a
    :class:`ServiceProcess`. Logs go to ``tmp_path/<name>-<port>.log``. All are stopped at the end."""
    services: list[ServiceProcess] = []
    log_dir = tmp_path / "service-logs"

    def start(
        name: str,
        env: Mapping[str, str | None] | None = None,
        port_var: str | None = None,
        *,
        port: int | None = None,
        wait: bool = True,
        timeout: float = 15.0,
        args: tuple[str, ...] = (),
    ) -> ServiceProcess:
        service = start_service_process(
            name, env, port_var, log_dir, port=port, wait=False, timeout=timeout, args=args
        )
        services.append(service)
        if wait:
            service.wait_live(timeout)
        return service

    yield start
    for service in reversed(services):
        service.terminate(timeout=5.0)
