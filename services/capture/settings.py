"""Capture settings: every field is an environment variable (see README, "Configuration")."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from shared.settings import BlankIsNone, CameraId, CommonSettings, HttpUrl, Port, RedisUrl, env_alias

CaptureTransport = Literal["redis", "http", "both"]


class CaptureSettings(CommonSettings):
    camera_id: CameraId = "cam0"
    capture_source: str = Field(default="synthetic", min_length=1)
    # None: the source's own rate (a file's fps, a live camera as it comes); 0: unthrottled.
    capture_fps: Annotated[float | None, BlankIsNone] = Field(default=None, ge=0, le=1000)
    capture_loop: bool = True
    capture_width: int = Field(default=1280, ge=16, le=8192)
    capture_height: int = Field(default=720, ge=16, le=8192)
    capture_preload_frames: int = Field(default=0, ge=0, le=3000)
    capture_open_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    capture_read_timeout_seconds: float = Field(default=2.0, gt=0, le=120)
    capture_port: Port = 8081
    transport: CaptureTransport = Field(
        default="redis", validation_alias=env_alias("CAPTURE_TRANSPORT", "TRANSPORT")
    )
    jpeg_quality: int = Field(default=80, ge=1, le=100)
    # Opt-in: encode at full rate only while a consumer signals demand (docs/operations.md).
    capture_on_demand: bool = False
    capture_idle_fps: float = Field(default=1.0, gt=0, le=30)
    # CAPTURE_REDIS_URL lets one environment give capture its own Redis ACL user (deploy/redis/).
    redis_url: RedisUrl = Field(
        default="redis://localhost:6379/0", validation_alias=env_alias("CAPTURE_REDIS_URL", "REDIS_URL")
    )
    redis_stream_maxlen: int = Field(default=8, ge=1, le=10000)
    gateway_url: HttpUrl = "http://localhost:8080"
    gateway_token: Annotated[str | None, BlankIsNone] = None
    publish_timeout_seconds: float = Field(default=2.0, gt=0, le=60)

    @model_validator(mode="after")
    def _on_demand_needs_redis(self) -> CaptureSettings:
        if self.capture_on_demand and "redis" not in self.transports:
            raise ValueError(
                "CAPTURE_ON_DEMAND needs a Redis transport (CAPTURE_TRANSPORT=redis or both): "
                "consumers signal their demand on Redis"
            )
        return self

    @property
    def transports(self) -> tuple[str, ...]:
        return ("redis", "http") if self.transport == "both" else (self.transport,)
