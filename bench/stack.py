"""The framebus processes of one bench group: Redis or the gateway, one viewer, captures."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from bench.procs import Proc, Redis, Scrape, Service, drops_by_reason, metric_sum
from bench.results import Counts

ROOT = Path(__file__).resolve().parents[1]


class Stack:
    """Upstream (redis-server or gateway) + one viewer writing a latency log; captures come and go.

    The viewer renders only watched cameras, so one browser-like reader watches ``watched`` (cam0
    by default) for the stack's life; its own CPU is not counted as framebus's.
    """

    def __init__(
        self,
        transport: str,
        workdir: Path,
        viewer_env: dict[str, str] | None = None,
        watched: tuple[str, ...] = ("cam0",),
        backplane: bool = False,
    ) -> None:
        self.transport = transport
        self.label = f"{transport}-backplane" if backplane else transport  # the name in results
        self.workdir = workdir
        self.latency_log = workdir / "latency.csv"
        self.redis: Redis | None = None
        self.gateway: Service | None = None
        self.captures: list[Service] = []
        self.watchers: list[Proc] = []
        self._env: dict[str, str] = {"TRANSPORT": transport, "LOG_LEVEL": "WARNING"}
        try:
            if transport == "redis" or backplane:
                self.redis = Redis(workdir)
                self._env["REDIS_URL"] = self.redis.url
            if transport == "http":
                # With the backplane, the gateway's ingest goes onto Redis and its WebSocket
                # subscribers (the viewer) are served from Redis: the bus path of compose.
                gateway_env = {**self._env, "GATEWAY_BACKPLANE": "redis" if backplane else "none"}
                self.gateway = Service("gateway", gateway_env, workdir)
                self.gateway.wait_status("/livez")
                self._env["GATEWAY_URL"] = self.gateway.url
            env = {**self._env, "VIEWER_LATENCY_LOG": str(self.latency_log), **(viewer_env or {})}
            self.viewer = Service("viewer", env, workdir)
            self.viewer.wait_status("/livez")
            for camera in watched:
                self.watch(camera)
        except BaseException:
            self.close()
            raise

    def procs(self) -> list[Proc]:
        upstream = [proc for proc in (self.redis, self.gateway) if proc is not None]
        return [*self.captures, *upstream, self.viewer]

    def start_capture(self, env: dict[str, str], camera: str = "cam0") -> Service:
        label = f"capture-{camera}" if camera != "cam0" else "capture"
        capture = Service("capture", {**self._env, "CAMERA_ID": camera, **env}, self.workdir, label)
        self.captures.append(capture)
        return capture

    def watch(self, camera: str, readers: int = 1) -> Proc:
        """``readers`` MJPEG clients on the camera (bench/readers.py), like browsers watching it."""
        url = f"{self.viewer.url}/stream.mjpg?camera={camera}"
        argv = [sys.executable, "-m", "bench.readers", url, str(readers)]
        watcher = Proc(f"watch-{camera}", argv, {**os.environ, "PYTHONPATH": str(ROOT)}, self.workdir)
        self.watchers.append(watcher)
        return watcher

    def stop_captures(self) -> None:
        for capture in self.captures:
            capture.stop()
        self.captures.clear()

    def check(self) -> None:
        for proc in self.procs():
            proc.check()

    def scrape(self) -> Scrape:
        services = [s for s in (*self.captures, self.gateway, self.viewer) if isinstance(s, Service)]
        return {s.name: s.metrics() for s in services}

    def close(self) -> None:
        self.stop_captures()
        for watcher in self.watchers:
            with contextlib.suppress(Exception):
                watcher.stop()
        for proc in (getattr(self, "viewer", None), self.gateway, self.redis):
            if proc is not None:
                with contextlib.suppress(Exception):
                    proc.stop()


def counter_deltas(before: Scrape, after: Scrape) -> Counts:
    """Figures the bench reads from /metrics between two scrapes (all captures summed)."""

    def delta(name: str, proc: str) -> float:
        def total(snap: Scrape) -> float:
            return sum(metric_sum(samples, name) for key, samples in snap.items() if key.startswith(proc))

        return total(after) - total(before)

    drops: dict[str, float] = {}
    for proc, samples in after.items():
        old = drops_by_reason(before.get(proc, []))
        for reason, value in drops_by_reason(samples).items():
            if value - old.get(reason, 0.0):
                key = f"{proc.split('-')[0]}:{reason}"
                drops[key] = drops.get(key, 0.0) + value - old.get(reason, 0.0)
    return Counts(
        captured=delta("framebus_frames_captured_total", "capture"),
        rendered=delta("framebus_frames_rendered_total", "viewer"),
        bytes_sum=delta("framebus_frame_bytes_sum", "capture"),
        bytes_count=delta("framebus_frame_bytes_count", "capture"),
        drops={k: v for k, v in drops.items() if v},
    )
