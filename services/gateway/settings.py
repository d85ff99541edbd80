"""Gateway settings: every field is an environment variable (see README, "Configuration")."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from shared.settings import CommonSettings, Port, RedisUrl


class GatewaySettings(CommonSettings):
    gateway_port: Port = 8080
    gateway_token: str | None = None
    gateway_max_frame_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    gateway_max_cameras: int = Field(default=64, ge=1, le=10000)
    gateway_body_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    # A WebSocket subscriber whose frame cannot be sent for this long has stopped reading.
    gateway_subscriber_stall_seconds: float = Field(default=2.0, gt=0, le=300)
    # "redis": ingest appends to the Redis bus and subscribers read from it (see docs/protocol.md).
    gateway_backplane: Literal["none", "redis"] = "none"
    redis_url: RedisUrl = "redis://localhost:6379/0"
    redis_stream_maxlen: int = Field(default=8, ge=1, le=10000)

    @field_validator("gateway_token", mode="before")
    @classmethod
    def _blank_token_means_none(cls, value: object) -> object:
        return None if value == "" else value
