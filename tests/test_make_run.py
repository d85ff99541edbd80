"""`make run` — the README's local topology — serves live video, two cameras when asked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures import free_port, wait_until
from tests.fixtures.processes import setting_env_names
from tests.support.net import http_get, port_open

ROOT = Path(__file__).resolve().parents[1]
CAM1_PORT = 8082  # fixed in Procfile.cameras, like the compose override


@dataclass
class LocalRun:
    proc: subprocess.Popen[bytes]
    log: Path
    ports: dict[str, int]

    def stats(self, camera: str) -> dict[str, object]:
        status, body = http_get(f"http://127.0.0.1:{self.ports['VIEWER_PORT']}/api/stats?camera={camera}")
        return json.loads(body) if status == 200 else {}

    def wait_live(self, camera: str, timeout: float) -> None:
        wait_until(
            lambda: self.stats(camera).get("live"),
            timeout=timeout,
            message=f"{camera} not live after {timeout:g}s:\n{self.log.read_text()[-3000:]}",
        )

    def stop(self) -> None:
        """What Ctrl-C / SIGTERM does to `make run` in a terminal: the whole process group."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[Callable[..., LocalRun]]:
    runs: list[LocalRun] = []

    def start(**env: str) -> LocalRun:
        ports = {name: free_port() for name in ("VIEWER_PORT", "GATEWAY_PORT", "CAPTURE_PORT", "REDIS_PORT")}
        child = {k: v for k, v in os.environ.items() if k not in setting_env_names()}
        child.update({name: str(port) for name, port in ports.items() if name != "REDIS_PORT"})
        child["GATEWAY_URL"] = f"http://127.0.0.1:{ports['GATEWAY_PORT']}"
        child["REDIS_URL"] = (
            f"redis://127.0.0.1:{ports['REDIS_PORT']}/0"  # nothing there: make run starts one
        )
        child.update(env)
        log = tmp_path / f"make-run-{len(runs)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                ["make", "--no-print-directory", "run"], cwd=ROOT, env=child,
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        runs.append(LocalRun(proc, log, ports))
        return runs[-1]

    yield start
    for run in runs:
        run.stop()


@pytest.mark.parametrize("transport", ["redis", "http"])
def test_make_run_shows_moving_video_within_ten_seconds(
    make_run: Callable[..., LocalRun], transport: str
) -> None:
    run = make_run(TRANSPORT=transport)
    run.wait_live("cam0", timeout=10)
    first = run.stats("cam0")["seq"]
    assert isinstance(first, int)
    wait_until(lambda: int(run.stats("cam0")["seq"]) > first, timeout=5, message="the video is not moving")  # type: ignore[call-overload]
    assert run.stats("cam0")["transport"] == transport
    assert f"http://localhost:{run.ports['VIEWER_PORT']}/" in run.log.read_text()


def test_make_run_serves_two_cameras_when_asked(make_run: Callable[..., LocalRun]) -> None:
    if port_open(CAM1_PORT):
        pytest.fail(f"port {CAM1_PORT} (cam1's capture in Procfile.cameras) is taken by another process")
    run = make_run(CAMERAS="2")
    run.wait_live("cam0", timeout=15)
    run.wait_live("cam1", timeout=15)
    _, body = http_get(f"http://127.0.0.1:{run.ports['VIEWER_PORT']}/api/cameras")
    assert {entry["camera"] for entry in json.loads(body)["cameras"]} >= {"cam0", "cam1"}


def test_make_run_stops_everything_on_sigterm(make_run: Callable[..., LocalRun]) -> None:
    run = make_run()
    run.wait_live("cam0", timeout=30)  # what is tested is the stop; startup's speed is tested above
    run.stop()
    # make itself exits at once; its children get the same signal and stop within 2 s each.
    still_open = lambda: [name for name, port in run.ports.items() if port_open(port)]  # noqa: E731
    wait_until(lambda: not still_open(), timeout=5, message=lambda: f"still listening: {still_open()}")
