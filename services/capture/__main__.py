"""python -m services.capture: read a camera, encode JPEG once, publish to Redis and/or HTTP."""

from services.capture.app import create_app
from services.capture.settings import CaptureSettings
from shared.runner import load_settings, run_http_service


def main() -> None:
    settings = load_settings(CaptureSettings, "capture")
    run_http_service("capture", settings, settings.capture_port, lambda: create_app(settings))


if __name__ == "__main__":
    main()
