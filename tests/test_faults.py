"""Faults: the system recovers by itself, readiness tells the truth meanwhile, counters show the gap.

Real processes throughout: redis-server, the GStreamer RTSP server, and our three services.
Waits are short because the services are configured for it (FRAME_STALE_SECONDS=2, a 1 s
camera read timeout); every wait polls with ``wait_until``, no sleep stands in for an assertion.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import urllib.request
from collections.abc import Callable, Iterator

import redis

from tests.fixtures import RtspFactory, ServiceFactory, ServiceProcess, free_port, wait_until
from tests.fixtures.frames import viewer_seq
from tests.fixtures.processes import watching
from tests.fixtures.servers import RedisServer
from tests.support.memory import memory_mib

STALE = "2"
SMALL_SOURCE = {"CAPTURE_WIDTH": "320", "CAPTURE_HEIGHT": "240", "CAPTURE_FPS": "30"}
BOUNDARY = b"--framebusframe"


# --- helpers ----------------------------------------------------------------------------------


def snapshot_live(viewer: ServiceProcess) -> str:
    with urllib.request.urlopen(f"{viewer.url}/snapshot.jpg", timeout=2) as response:
        return str(response.headers["X-Frame-Live"])


def failing_checks(service: ServiceProcess) -> set[str]:
    """Names of the readiness checks failing now (empty when /readyz is 200)."""
    status, body = service.get_json("/readyz")
    failing = {name for name, check in body["checks"].items() if not check["ok"]}
    assert (status == 503) == bool(failing), body
    return failing


def wait_frames_flow(viewer: ServiceProcess, more_than: int, timeout: float = 20.0) -> None:
    """Until the viewer has shown frames newer than ``more_than`` (+10) and is live again."""
    wait_until(
        lambda: viewer_seq(viewer) > more_than + 10 and snapshot_live(viewer) == "1",
        timeout=timeout,
        message=viewer.log_tail,
    )


def counter(service: ServiceProcess, name: str, **labels: str) -> float:
    return service.metric(name, labels or None) or 0.0


def assert_nothing_crashed(*services: ServiceProcess) -> None:
    for service in services:
        assert service.running, f"{service.name} exited:\n{service.log_tail()}"
        assert counter(service, "framebus_task_restarts_total") == 0, service.log_tail()
        assert "Traceback" not in service.log_text(), service.log_tail()


def start_redis_pipeline(
    start_service: ServiceFactory, redis_url: str, wait: bool = True
) -> tuple[ServiceProcess, ServiceProcess]:
    common = {"REDIS_URL": redis_url, "TRANSPORT": "redis", "FRAME_STALE_SECONDS": STALE}
    capture = start_service("capture", {**common, **SMALL_SOURCE})
    viewer = start_service("viewer", {**common, "VIEWER_DISCOVERY_SECONDS": "0.5"})
    if wait:
        capture.wait_ready()
        viewer.wait_ready()
    return capture, viewer


# --- Redis ------------------------------------------------------------------------------------


def test_capture_and_viewer_recover_when_redis_is_killed_and_restarted_on_the_same_port(
    redis_server: RedisServer, start_service: ServiceFactory
) -> None:
    """SIGKILL mid-stream, a few seconds away, back on the same port *empty* (no persistence)."""
    capture, viewer = start_redis_pipeline(start_service, redis_server.url)
    # A browser watches throughout: the viewer renders, so it sees (and counts) the outage.
    with watching(viewer, "cam0"):
        wait_frames_flow(viewer, 0)
        redis_server.kill()
        wait_until(lambda: "redis" in failing_checks(capture), timeout=10, message=capture.log_tail)
        wait_until(lambda: "redis" in failing_checks(viewer), timeout=10, message=viewer.log_tail)
        # While Redis is away the browser sees the "no signal" card, not a frozen picture.
        wait_until(lambda: snapshot_live(viewer) == "0", timeout=10)
        seq_at_outage = viewer_seq(viewer)

        redis_server.start()
        wait_frames_flow(viewer, seq_at_outage)
        capture.wait_ready(15)
        viewer.wait_ready(15)

        dropped = "framebus_frames_dropped_total"
        assert counter(capture, dropped, camera="cam0", stage="redis", reason="transport_error") >= 1
        assert counter(capture, dropped, camera="cam0", stage="redis", reason="transport_down") >= 1
        assert counter(capture, "framebus_transport_reconnects_total", transport="redis") >= 1
        assert counter(viewer, "framebus_transport_reconnects_total", transport="redis") >= 1
        assert viewer.get_json("/api/stats")[1]["dropped"].get("upstream_gap", 0) >= 1
        # The restarted Redis is empty: capture must have registered its camera again.
        client = redis.Redis.from_url(redis_server.url)
        assert b"cam0" in client.zrange("framebus:registry", 0, -1)
        client.close()
        assert_nothing_crashed(capture, viewer)


def test_capture_registers_its_camera_again_when_redis_loses_its_data_between_two_frames(
    redis_server: RedisServer, start_service: ServiceFactory
) -> None:
    """The other reading of "restarted without the same state": with a fixed REDIS_URL the port
    cannot change under a running service, but a Redis restarted from nothing (or a failover to an
    empty replica) can come back so quickly that no publish fails. FLUSHALL is that, deterministically:
    the connection never drops, and viewers must still discover the camera."""
    capture, viewer = start_redis_pipeline(start_service, redis_server.url)
    client = redis.Redis.from_url(redis_server.url)
    assert b"cam0" in client.zrange("framebus:registry", 0, -1)
    seq = viewer_seq(viewer)
    client.flushall()
    wait_until(
        lambda: b"cam0" in client.zrange("framebus:registry", 0, -1), timeout=10, message=capture.log_tail
    )
    wait_frames_flow(viewer, seq)
    client.close()
    assert_nothing_crashed(capture, viewer)


def test_services_started_before_redis_connect_when_it_comes(
    start_redis: Callable[..., RedisServer], start_service: ServiceFactory
) -> None:
    """Redis down at start-up (a compose stack whose Redis is still starting), then up on the
    port REDIS_URL names: services start, say not ready, and connect by themselves."""
    port = free_port()
    capture, viewer = start_redis_pipeline(start_service, f"redis://127.0.0.1:{port}/0", wait=False)
    wait_until(lambda: "redis" in failing_checks(capture), timeout=10)
    wait_until(lambda: {"redis", "frames"} <= failing_checks(viewer), timeout=10)
    start_redis(port=port)
    wait_frames_flow(viewer, 0)
    capture.wait_ready(15)
    viewer.wait_ready(15)
    assert_nothing_crashed(capture, viewer)


# --- gateway ----------------------------------------------------------------------------------


def test_capture_and_http_viewer_recover_when_the_gateway_is_killed_and_restarted(
    start_service: ServiceFactory,
) -> None:
    gateway = start_service("gateway")
    common = {"GATEWAY_URL": gateway.url, "TRANSPORT": "http", "FRAME_STALE_SECONDS": STALE}
    capture = start_service("capture", {**common, **SMALL_SOURCE})
    viewer = start_service("viewer", {**common, "VIEWER_DISCOVERY_SECONDS": "0.5"})
    capture.wait_ready()
    viewer.wait_ready()

    gateway.kill()
    wait_until(lambda: "http" in failing_checks(capture), timeout=10, message=capture.log_tail)
    wait_until(lambda: "http" in failing_checks(viewer), timeout=10, message=viewer.log_tail)
    wait_until(lambda: snapshot_live(viewer) == "0", timeout=10)
    # The camera is still read while nobody takes its frames; they are dropped and counted.
    captured = counter(capture, "framebus_frames_captured_total", camera="cam0")
    dropped = "framebus_frames_dropped_total"
    down = counter(capture, dropped, camera="cam0", stage="http", reason="transport_down")
    wait_until(lambda: counter(capture, "framebus_frames_captured_total", camera="cam0") > captured + 10)
    wait_until(lambda: counter(capture, dropped, camera="cam0", stage="http", reason="transport_down") > down)
    assert counter(capture, dropped, camera="cam0", stage="http", reason="transport_error") >= 1
    seq_at_outage = viewer_seq(viewer)

    restarted = start_service("gateway", port=gateway.port)
    wait_frames_flow(viewer, seq_at_outage, timeout=25)
    capture.wait_ready(15)
    viewer.wait_ready(15)
    assert counter(capture, "framebus_transport_reconnects_total", transport="http") >= 1
    assert counter(viewer, "framebus_transport_reconnects_total", transport="http") >= 1
    assert counter(restarted, "framebus_subscribers", camera="cam0") == 1
    assert_nothing_crashed(capture, viewer, restarted)


# --- RTSP camera ------------------------------------------------------------------------------


def start_rtsp_pipeline(
    redis_server: RedisServer, start_service: ServiceFactory, url: str
) -> tuple[ServiceProcess, ServiceProcess]:
    common = {"REDIS_URL": redis_server.url, "TRANSPORT": "redis", "FRAME_STALE_SECONDS": STALE}
    camera = {
        "CAPTURE_SOURCE": url,
        "CAPTURE_READ_TIMEOUT_SECONDS": "1",
        "CAPTURE_OPEN_TIMEOUT_SECONDS": "2",
    }
    capture = start_service("capture", {**common, **camera})
    viewer = start_service("viewer", common)
    capture.wait_ready(20)
    viewer.wait_ready(20)
    return capture, viewer


def assert_camera_loss_is_reported(capture: ServiceProcess, viewer: ServiceProcess) -> None:
    # Bounded: read timeout (1 s) + watchdog grace, well inside these waits.
    wait_until(lambda: "source" in failing_checks(capture), timeout=10, message=capture.log_tail)
    wait_until(lambda: counter(capture, "framebus_source_up", camera="cam0") == 0, timeout=15)
    wait_until(lambda: snapshot_live(viewer) == "0", timeout=10, message=viewer.log_tail)
    assert "frames" in failing_checks(viewer)


def test_capture_reopens_the_rtsp_camera_after_the_server_is_killed_and_returns(
    rtsp_server: RtspFactory, redis_server: RedisServer, start_service: ServiceFactory
) -> None:
    camera = rtsp_server(width=320, height=240, fps=15)
    capture, viewer = start_rtsp_pipeline(redis_server, start_service, camera.url)
    camera.kill()
    assert_camera_loss_is_reported(capture, viewer)
    seq = viewer_seq(viewer)
    camera.restart()
    wait_frames_flow(viewer, seq, timeout=30)
    capture.wait_ready(15)
    assert counter(capture, "framebus_source_reconnects_total", camera="cam0") >= 1
    assert "source lost" in capture.log_text()
    assert_nothing_crashed(capture, viewer)


def test_capture_notices_a_frozen_rtsp_server_and_reopens_when_it_thaws(
    rtsp_server: RtspFactory, redis_server: RedisServer, start_service: ServiceFactory
) -> None:
    """SIGSTOP: the TCP connection stays open and silent, the case where reads hang."""
    camera = rtsp_server(width=320, height=240, fps=15)
    capture, viewer = start_rtsp_pipeline(redis_server, start_service, camera.url)
    camera.stop_signal()
    try:
        assert_camera_loss_is_reported(capture, viewer)
        seq = viewer_seq(viewer)
    finally:
        camera.cont()
    wait_frames_flow(viewer, seq, timeout=30)
    capture.wait_ready(15)
    assert counter(capture, "framebus_source_reconnects_total", camera="cam0") >= 1
    assert_nothing_crashed(capture, viewer)


# --- browser-like MJPEG clients ---------------------------------------------------------------


def open_stream(viewer: ServiceProcess, receive_buffer: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", viewer.port))
    sock.sendall(b"GET /stream.mjpg?camera=cam0 HTTP/1.1\r\nHost: viewer\r\n\r\n")
    return sock


def read_first_frame(sock: socket.socket) -> None:
    """Reads until one whole part has arrived (the opening boundary, a JPEG, the next boundary)."""
    data = b""
    while data.count(BOUNDARY) < 2:
        chunk = sock.recv(65536)
        assert chunk, "stream closed before its first frame"
        data += chunk


class PartCounter(threading.Thread):
    """A well-behaved browser: reads the stream as fast as it comes and counts parts."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.parts = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        tail = b""
        with contextlib.suppress(OSError):
            while not self.stopped.is_set():
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                window = tail + chunk
                self.parts += window.count(BOUNDARY)
                tail = window[-(len(BOUNDARY) - 1) :]

    def stop(self) -> None:
        self.stopped.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.join(5)
        self.sock.close()


def mjpeg_clients(viewer: ServiceProcess) -> float:
    return counter(viewer, "framebus_mjpeg_clients", camera="cam0")


def rendered(viewer: ServiceProcess) -> float:
    return counter(viewer, "framebus_frames_rendered_total", camera="cam0")


def received_share(reader: PartCounter, viewer: ServiceProcess, frames: int = 45) -> float:
    """Fraction of the frames the viewer rendered (over ``frames`` of them) that reached ``reader``."""
    start_parts, start_rendered = reader.parts, rendered(viewer)
    wait_until(lambda: rendered(viewer) >= start_rendered + frames, timeout=15)
    return (reader.parts - start_parts) / (rendered(viewer) - start_rendered)


@contextlib.contextmanager
def sockets_closed_at_end() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    try:
        yield opened
    finally:
        for sock in opened:
            sock.close()


def test_stalled_vanishing_and_many_mjpeg_clients_leave_memory_bounded_and_others_served(
    redis_server: RedisServer, start_service: ServiceFactory
) -> None:
    _, viewer = start_redis_pipeline(start_service, redis_server.url)
    reader = PartCounter(open_stream(viewer))
    reader.start()
    wait_until(lambda: reader.parts >= 5, timeout=10)
    assert received_share(reader, viewer) > 0.5
    baseline_rss = int(memory_mib(viewer.pid) * 2**20)

    with sockets_closed_at_end() as opened:
        # Five browsers that stopped reading: tiny receive buffers, never recv().
        opened += [open_stream(viewer, receive_buffer=4096) for _ in range(5)]
        # Five that leave in the middle of a frame, abruptly.
        for _ in range(5):
            sock = open_stream(viewer)
            sock.recv(3000)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")  # RST on close
            sock.close()
        # A hundred at once, each getting its first frame.
        crowd = [open_stream(viewer) for _ in range(100)]
        opened += crowd
        for sock in crowd:
            read_first_frame(sock)
        wait_until(lambda: mjpeg_clients(viewer) == 1 + 5 + 100, timeout=10, message=viewer.log_tail)

        # Stalled clients have had time to fill every buffer; memory stops there.
        assert received_share(reader, viewer) > 0.5, "the reading client lost its frame rate"
        loaded_rss = int(memory_mib(viewer.pid) * 2**20)
        assert received_share(reader, viewer) > 0.5
        later_rss = int(memory_mib(viewer.pid) * 2**20)
        print(
            f"viewer RSS MiB: baseline {baseline_rss / 2**20:.1f}, 106 clients {loaded_rss / 2**20:.1f}, "
            f"later {later_rss / 2**20:.1f}"
        )
        assert loaded_rss - baseline_rss < 96 * 2**20, (baseline_rss, loaded_rss)
        assert later_rss - loaded_rss < 16 * 2**20, (loaded_rss, later_rss)

    # Everyone but the reader has gone: their handlers ended.
    wait_until(lambda: mjpeg_clients(viewer) == 1, timeout=10, message=viewer.log_tail)
    assert viewer.get_json("/api/stats")[1]["clients"] == 1
    reader.stop()
    wait_until(lambda: mjpeg_clients(viewer) == 0, timeout=10)
    assert_nothing_crashed(viewer)


# --- SIGTERM under load -----------------------------------------------------------------------


def stalled_websocket(gateway: ServiceProcess) -> socket.socket:
    """A WebSocket subscriber that completes the handshake and then never reads."""
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(
        b"GET /cameras/cam0/ws HTTP/1.1\r\nHost: gateway\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert sock.recv(4096).startswith(b"HTTP/1.1 101")
    return sock


def test_every_service_exits_cleanly_and_promptly_on_sigterm_under_full_load(
    redis_server: RedisServer, start_service: ServiceFactory
) -> None:
    gateway = start_service("gateway")
    common = {"REDIS_URL": redis_server.url, "GATEWAY_URL": gateway.url}
    capture = start_service("capture", {**common, "TRANSPORT": "both"})  # 720p, 30 fps
    redis_viewer = start_service("viewer", {**common, "TRANSPORT": "redis"})
    http_viewer = start_service("viewer", {**common, "TRANSPORT": "http"})
    for service in (capture, redis_viewer, http_viewer):
        service.wait_ready()
    with sockets_closed_at_end() as opened:
        for viewer in (redis_viewer, http_viewer):
            opened += [open_stream(viewer, receive_buffer=4096) for _ in range(3)]
            reading = open_stream(viewer)
            read_first_frame(reading)
            opened.append(reading)
            wait_until(lambda v=viewer: mjpeg_clients(v) == 4, timeout=10)  # type: ignore[misc]
        opened.append(stalled_websocket(gateway))
        wait_until(lambda: counter(gateway, "framebus_subscribers", camera="cam0") == 2, timeout=10)

        for service in (http_viewer, redis_viewer, capture, gateway):
            code, seconds = service.terminate(timeout=10)
            assert code in (0, -15), f"{service.name} exited {code}:\n{service.log_tail()}"
            assert seconds < 2.0, f"{service.name} took {seconds:.2f}s to stop"
            assert "Traceback" not in service.log_text(), service.log_tail()
