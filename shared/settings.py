"""Settings every service shares, and the one-line error a bad value produces.

Each service has one pydantic-settings class (``services/<name>/settings.py``) that
inherits from :class:`CommonSettings`. Field names are the environment variable names,
lower-cased; a per-service override such as ``CAPTURE_TRANSPORT`` is an alias listed
before the shared name.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeGuard

from pydantic import (
    AfterValidator,
    AliasChoices,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.logs import redact
from shared.redisconn import is_cluster_url, parse_cluster_url
from shared.registry import DEFAULT_IDLE_SECONDS

CAMERA_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
CAMERA_ID_RULE = "camera id must match [A-Za-z0-9_-]{1,64}"


def is_camera_id(value: object) -> TypeGuard[str]:
    """The one check every entry point applies to a camera id (URL, query, Redis, JSON)."""
    return isinstance(value, str) and CAMERA_ID_PATTERN.fullmatch(value) is not None


def validate_camera_id(value: str) -> str:
    if not is_camera_id(value):
        raise ValueError(CAMERA_ID_RULE)
    return value


# HS256 with a short secret can be brute-forced offline from any token; 32 characters of
# token_urlsafe are ~190 bits.
MIN_AUTH_SECRET_CHARS = 32

CameraId = Annotated[str, AfterValidator(validate_camera_id)]
Port = Annotated[int, Field(ge=1, le=65535)]


def _blank_is_none(value: object) -> object:
    return None if value == "" else value


# `VAR=` in a compose file or .env means "not set", as if the line were absent.
BlankIsNone = BeforeValidator(_blank_is_none)


def validate_redis_url(value: str) -> str:
    """One server (redis://, rediss://, unix://) or a Redis Cluster (redis+cluster://h:p[,h:p…])."""
    if is_cluster_url(value):
        parse_cluster_url(value)  # its ValueError names what is wrong
        return value
    if not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must start with redis://, rediss://, unix:// or (a cluster) redis+cluster://")
    return value


def validate_http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/")


RedisUrl = Annotated[str, AfterValidator(validate_redis_url)]
HttpUrl = Annotated[str, AfterValidator(validate_http_url)]


def env_alias(*names: str) -> Any:
    """Field alias accepting the first name that is set (service override, then shared)."""
    return AliasChoices(*names)


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", populate_by_name=True)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    bind_host: str = "127.0.0.1"
    frame_stale_seconds: float = Field(default=5.0, gt=0, le=3600)
    # A camera with no frame for this long is forgotten: registry, gateway slots, viewer tiles.
    camera_idle_seconds: float = Field(default=DEFAULT_IDLE_SECONDS, gt=0, le=7 * 24 * 3600)
    # Access control (shared/auth.py): the HS256 signing secret of every token; unset = auth off.
    auth_secret: SecretStr | None = None
    # The health endpoints stay open for probes and scrapers unless one of these closes it
    # (then it needs a token with the "monitor" scope).
    auth_open_livez: bool = True
    auth_open_readyz: bool = True
    auth_open_metrics: bool = True

    @field_validator("auth_secret", mode="before")
    @classmethod
    def _secret_long_enough(cls, value: object) -> object:
        if value == "" or value is None:
            return None
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(raw, str) and len(raw) < MIN_AUTH_SECRET_CHARS:
            raise ValueError(
                f"must be at least {MIN_AUTH_SECRET_CHARS} characters (got {len(raw)}); make one with "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

    @property
    def auth_secret_value(self) -> str | None:
        return self.auth_secret.get_secret_value() if self.auth_secret is not None else None


def env_names(settings_cls: type[BaseSettings]) -> set[str]:
    """Every environment variable name the settings class reads (upper case)."""
    names: set[str] = set()
    for field_name, info in settings_cls.model_fields.items():
        names.update(_names_of(field_name, info))
    return names


def _names_of(field_name: str, info: FieldInfo) -> list[str]:
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice).upper() for choice in alias.choices]
    if isinstance(alias, str):
        return [alias.upper()]
    return [field_name.upper()]


def describe_settings_error(exc: ValidationError, settings_cls: type[BaseSettings]) -> str:
    """One line naming each bad variable, for a service that refuses to start."""
    parts = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        info = settings_cls.model_fields.get(field)
        names = "/".join(_names_of(field, info)) if info else field.upper()
        value = error.get("input")
        shown = f" (got {value!r})" if isinstance(value, (str, int, float)) else ""
        if "TOKEN" in names or "PASSWORD" in names or "SECRET" in names:
            shown = ""  # a secret is never echoed, not even a malformed one
        parts.append(f"{names}: {error['msg']}{shown}")
    # A bad URL may still carry a password (http://:pw@host): hide it like the logs do.
    return redact("invalid setting " + "; ".join(parts))
