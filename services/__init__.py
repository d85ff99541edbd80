"""The framebus services: capture, gateway, viewer."""
