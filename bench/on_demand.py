"""Work on demand (issue 15): capture on demand, a new watcher's first picture, sizes on demand.

* **Capture on demand**: one 720p@30 capture with ``CAPTURE_ON_DEMAND=true`` (trickle 1 fps) and a
  viewer nobody watches. Capture's CPU idle, then a browser-like client opens the MJPEG stream:
  how long until its first picture (target <= 100 ms), and until capture runs at full rate again
  (the first two frames shown one frame interval apart; target <= one frame interval after
  the stream was opened, plus that interval), then capture's CPU while watched.
* **Sizes on demand**: with the camera watched, clients poll ``/snapshot.jpg?width=W`` as fast as
  they can: responses per second against the distinct frames they carried (one render per frame
  per size, however many ask) and the viewer's extra CPU.

``python -m bench.on_demand`` runs it alone.
"""

from __future__ import annotations

import http.client
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench.analysis import FrameRecord, read_records
from bench.clip import clip_path
from bench.procs import CpuWindow, Service, hold
from bench.stack import Stack
from bench.verdicts import Target, Verdicts, ms_text

FPS = 30.0
IDLE_FPS = 1.0
FIRST_PICTURE = Target("<=", 100.0)  # ms, "within one frame interval (<= 100 ms) of asking"
RESUME = Target("<=", 1000.0 / FPS)  # ms after the stream opened, "within one frame interval"
SNAPSHOT_CLIENTS = 4
SNAPSHOT_WIDTHS = (320, 1280)
BOUNDARY = b"--framebusframe"


@dataclass(frozen=True, kw_only=True)
class SizeFigures:
    width: int
    responses_per_second: float
    distinct_frames_per_second: float  # different X-Frame-Seq values served
    viewer_extra_cores: float  # over the camera watched at 600x600 alone


@dataclass(frozen=True, kw_only=True)
class OnDemandResult:
    fps: float
    idle_fps: float
    capture_idle_cores: float
    capture_watched_cores: float
    first_picture_ms: float | None
    resume_ms: float | None  # stream opened -> the first frame captured at full rate again
    sizes: list[SizeFigures]


def _cores(procs: list[Service], seconds: float) -> dict[str, float]:
    window = CpuWindow(list(procs))
    window.start()
    hold(seconds, list(procs))
    window.stop()
    return {name: used / window.wall for name, used in window.seconds.items()}


class MjpegClient:
    """One browser: opens the stream, notes when the first part arrives, reads until closed."""

    def __init__(self, url: str) -> None:
        self._url = urlsplit(url)
        self.opened_ns = 0
        self.first_part_ns: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        conn = http.client.HTTPConnection(self._url.hostname or "127.0.0.1", self._url.port, timeout=10)
        self.opened_ns = time.time_ns()
        conn.request("GET", f"{self._url.path}?{self._url.query}")
        response = conn.getresponse()
        seen = b""
        while not self._stop.is_set():
            chunk = response.read1(65536)
            if not chunk:
                break
            if self.first_part_ns is None:
                seen += chunk
                # The first part is complete once the next boundary follows it.
                if seen.count(BOUNDARY) >= 2:
                    self.first_part_ns = time.time_ns()
        conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def resume_ms(records: list[FrameRecord], opened_ns: int) -> float | None:
    """From the stream's opening to when full rate began: the capture of the first frame that
    follows its predecessor within 1.5 frame intervals (the trickle is 1 fps, full rate FPS),
    less the one interval it followed it by (the source is paced at FPS)."""
    frames = sorted((r for r in records if r.captured_ns >= opened_ns), key=lambda r: r.seq)
    for first, second in itertools.pairwise(frames):
        if second.seq == first.seq + 1 and second.captured_ns - first.captured_ns <= 1.5e9 / FPS:
            return (second.captured_ns - opened_ns) / 1e6 - 1000.0 / FPS
    return None


def _poll_snapshots(url: str, seconds: float, seqs: list[str]) -> None:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=5)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        conn.request("GET", f"{parts.path}?{parts.query}")
        response = conn.getresponse()
        response.read()
        seqs.append(response.headers.get("X-Frame-Seq", ""))
    conn.close()


def size_figures(viewer: Service, width: int, seconds: float, baseline_cores: float) -> SizeFigures:
    url = f"{viewer.url}/snapshot.jpg?camera=cam0&width={width}"
    seqs: list[str] = []
    pollers = [
        threading.Thread(target=_poll_snapshots, args=(url, seconds, seqs), daemon=True)
        for _ in range(SNAPSHOT_CLIENTS)
    ]
    window = CpuWindow([viewer])
    window.start()
    for poller in pollers:
        poller.start()
    for poller in pollers:
        poller.join(timeout=seconds + 10)
    window.stop()
    return SizeFigures(
        width=width,
        responses_per_second=round(len(seqs) / window.wall, 1),
        distinct_frames_per_second=round(len(set(seqs)) / window.wall, 1),
        viewer_extra_cores=round(window.seconds["viewer"] / window.wall - baseline_cores, 3),
    )


def on_demand_case(workdir: Path, quick: bool, say: Callable[[str], None]) -> OnDemandResult:
    seconds = 3.0 if quick else 6.0
    stack = Stack("redis", workdir, watched=())
    try:
        env = {
            "CAPTURE_SOURCE": str(clip_path(1280, 720, 10)),
            "CAPTURE_PRELOAD_FRAMES": "60",
            "CAPTURE_ON_DEMAND": "true",
            "CAPTURE_IDLE_FPS": f"{IDLE_FPS:g}",
        }
        capture = stack.start_capture(env)
        capture.wait_status("/readyz", 90)
        hold(2.0, stack.procs())  # no stats call: that would watch the camera for 10 s
        idle = _cores([capture], seconds)["capture"]
        browser = MjpegClient(f"{stack.viewer.url}/stream.mjpg?camera=cam0")
        browser.start()
        hold(2.0, stack.procs())
        records = read_records(stack.latency_log, browser.opened_ns, time.time_ns(), "cam0")
        first = (browser.first_part_ns - browser.opened_ns) / 1e6 if browser.first_part_ns else None
        resumed = resume_ms(records, browser.opened_ns)
        watched = _cores([capture, stack.viewer], seconds)
        sizes = [size_figures(stack.viewer, width, seconds, watched["viewer"]) for width in SNAPSHOT_WIDTHS]
        browser.stop()
    finally:
        stack.close()
    result = OnDemandResult(
        fps=FPS,
        idle_fps=IDLE_FPS,
        capture_idle_cores=round(idle, 3),
        capture_watched_cores=round(watched["capture"], 3),
        first_picture_ms=None if first is None else round(first, 1),
        resume_ms=None if resumed is None else round(resumed, 1),
        sizes=sizes,
    )
    say(on_demand_rows(result)[1])
    return result


def on_demand_rows(result: OnDemandResult) -> list[str]:
    rows = [
        f"work on demand: one 720p@{result.fps:g} capture, CAPTURE_ON_DEMAND "
        f"(trickle {result.idle_fps:g} fps)",
        f"  capture {result.capture_idle_cores:.3f} cores unwatched, "
        f"{result.capture_watched_cores:.3f} watched; "
        f"a new watcher's first picture after {ms_text(result.first_picture_ms, ' ms')}, "
        f"full rate from {ms_text(result.resume_ms, ' ms')} after it asked",
    ]
    for size in result.sizes:
        rows.append(
            f"  /snapshot.jpg?width={size.width} x {SNAPSHOT_CLIENTS} clients: "
            f"{size.responses_per_second:.0f} responses/s of {size.distinct_frames_per_second:.0f} "
            f"distinct frames/s, viewer +{size.viewer_extra_cores:.3f} cores"
        )
    return rows


def on_demand_verdicts(result: OnDemandResult, out: Verdicts) -> None:
    out.check("on demand: a new watcher's first picture (ms)", result.first_picture_ms, FIRST_PICTURE)
    out.check("capture on demand: full rate after a watcher asked (ms)", result.resume_ms, RESUME)
    if result.capture_watched_cores:
        ratio = result.capture_idle_cores / result.capture_watched_cores
        out.check("capture on demand: CPU unwatched / watched", ratio)


def main() -> None:
    from bench.clip import CACHE

    result = on_demand_case(CACHE / "runs" / f"on-demand-{time.strftime('%Y%m%d-%H%M%S')}", False, print)
    out = Verdicts()
    on_demand_verdicts(result, out)
    print("\n".join([*on_demand_rows(result), *out.lines]))


if __name__ == "__main__":
    main()
