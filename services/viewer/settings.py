"""Viewer settings: every field is an environment variable (see README, "Configuration")."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from shared.settings import CameraId, CommonSettings, HttpUrl, Port, RedisUrl, env_alias, validate_camera_id


class ViewerSettings(CommonSettings):
    camera_id: CameraId = "cam0"
    viewer_cameras: str = ""  # comma-separated camera ids to follow besides those discovered
    viewer_port: Port = 8000
    transport: Literal["redis", "http"] = Field(
        default="redis", validation_alias=env_alias("VIEWER_TRANSPORT", "TRANSPORT")
    )
    # VIEWER_REDIS_URL lets one environment give the viewer its own Redis ACL user (deploy/redis/).
    redis_url: RedisUrl = Field(
        default="redis://localhost:6379/0", validation_alias=env_alias("VIEWER_REDIS_URL", "REDIS_URL")
    )
    gateway_url: HttpUrl = "http://localhost:8080"
    viewer_width: int = Field(default=600, ge=16, le=4096)
    viewer_height: int = Field(default=600, ge=16, le=4096)
    viewer_fit: Literal["letterbox", "stretch"] = "letterbox"
    viewer_jpeg_quality: int = Field(default=80, ge=1, le=100)
    viewer_decode_reduced: Literal["auto", "always", "never"] = "auto"
    # A camera is rendered while streamed, and this long after its snapshot or figures were asked.
    viewer_watch_linger_seconds: float = Field(default=10.0, gt=0, le=3600)
    viewer_max_clients: int = Field(default=200, ge=1, le=10000)
    # A stream client that accepts no bytes for this long is dropped, freeing its place.
    viewer_client_stall_seconds: float = Field(default=10.0, gt=0, le=3600)
    # A render taking more CPU than this marks the camera degraded and spaces its renders out
    # (isolation). A 1080p JPEG of pure noise takes ~25 ms here, a 4K one ~100 ms.
    viewer_render_budget_seconds: float = Field(default=0.08, gt=0, le=60)
    viewer_max_cameras: int = Field(default=16, ge=1, le=256)
    viewer_discovery_seconds: float = Field(default=2.0, gt=0, le=300)
    # Benchmark aid: append one CSV line per rendered frame to this file (empty = off).
    viewer_latency_log: str = ""
    # Mark the page's token cookie Secure (sent over HTTPS only). Set it behind a TLS proxy;
    # a request that reaches the viewer over HTTPS gets a Secure cookie anyway.
    auth_cookie_secure: bool = False

    @field_validator("viewer_cameras")
    @classmethod
    def _valid_camera_list(cls, value: str) -> str:
        for camera in filter(None, (c.strip() for c in value.split(","))):
            validate_camera_id(camera)
        return value

    @property
    def pinned_cameras(self) -> list[str]:
        extra = [c.strip() for c in self.viewer_cameras.split(",") if c.strip()]
        return list(dict.fromkeys([self.camera_id, *extra]))
