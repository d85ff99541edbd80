"""Gateway settings: every field is an environment variable (see README, "Configuration")."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from shared.settings import BlankIsNone, CommonSettings, Port, RedisUrl, env_alias


class GatewaySettings(CommonSettings):
    gateway_port: Port = 8080
    gateway_token: Annotated[str | None, BlankIsNone] = None
    gateway_max_frame_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    gateway_max_cameras: int = Field(default=64, ge=1, le=10000)
    gateway_body_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    # A WebSocket subscriber whose frame cannot be sent for this long has stopped reading.
    gateway_subscriber_stall_seconds: float = Field(default=2.0, gt=0, le=300)
    # "redis": ingest appends to the Redis bus and subscribers read from it (see docs/protocol.md).
    gateway_backplane: Literal["none", "redis"] = "none"
    # GATEWAY_REDIS_URL: its own Redis ACL user (make run sets it), else the shared REDIS_URL.
    redis_url: RedisUrl = Field(
        default="redis://localhost:6379/0", validation_alias=env_alias("GATEWAY_REDIS_URL", "REDIS_URL")
    )
    redis_stream_maxlen: int = Field(default=8, ge=1, le=10000)
