"""python -m services.viewer: show camera frames at 600x600 in the browser (MJPEG)."""

from services.viewer.app import create_app
from services.viewer.settings import ViewerSettings
from shared.runner import load_settings, run_http_service


def main() -> None:
    settings = load_settings(ViewerSettings, "viewer")
    run_http_service("viewer", settings, settings.viewer_port, lambda: create_app(settings))


if __name__ == "__main__":
    main()
