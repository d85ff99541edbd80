"""GStreamer RTSP camera (H.264 of a moving test pattern): the `rtsp-demo` compose profile's
camera, and the real RTSP server of the tests and of `make bench` (one script for all three).

Run it with Debian's ``/usr/bin/python3`` (a venv cannot import ``gi``)::

    /usr/bin/python3 rtsp_camera.py --width 1280 --height 720 --fps 25 --path /demo --port 8554
    /usr/bin/python3 rtsp_camera.py --address 127.0.0.1 --port 0 --path /test  # as the tests do

Prints the bound TCP port as a single line on stdout once it listens, then serves until
SIGTERM or SIGINT. ``--port 0`` lets the kernel choose a free port.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def build_launch(width: int, height: int, fps: int, pattern: str) -> str:
    return (
        f"( videotestsrc is-live=true pattern={pattern} "
        f"! video/x-raw,width={width},height={height},framerate={fps}/1 "
        "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 "
        "! rtph264pay name=pay0 pt=96 )"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--path", default="/demo")
    parser.add_argument("--port", type=int, default=8554, help="TCP port; 0 picks a free one")
    parser.add_argument("--address", default="0.0.0.0", help="listen address")
    parser.add_argument("--pattern", default="ball")
    args = parser.parse_args(argv)
    path = args.path if args.path.startswith("/") else "/" + args.path

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.address)
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(build_launch(args.width, args.height, args.fps, args.pattern))
    factory.set_shared(True)
    server.get_mount_points().add_factory(path, factory)

    if server.attach(None) == 0:
        print(f"rtsp_camera: cannot listen on {args.address}:{args.port}", file=sys.stderr, flush=True)
        return 1
    print(server.get_bound_port(), flush=True)

    loop = GLib.MainLoop()

    def stop(*_: object) -> bool:
        loop.quit()
        return GLib.SOURCE_REMOVE

    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, stop)
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, stop)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
