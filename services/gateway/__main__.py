"""python -m services.gateway: HTTP ingest and WebSocket fan-out of camera frames."""

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from shared.runner import load_settings, run_http_service


def main() -> None:
    settings = load_settings(GatewaySettings, "gateway")
    run_http_service("gateway", settings, settings.gateway_port, lambda: create_app(settings))


if __name__ == "__main__":
    main()
