"""What can go wrong for an algorithm author, as exceptions that say it plainly."""

from __future__ import annotations

import aiohttp
from redis.exceptions import AuthenticationError, AuthorizationError, NoPermissionError


class FramebusError(Exception):
    """Base class of every error the client library raises on purpose."""


class NoFrames(FramebusError):
    """No frame arrived within the subscription's ``timeout``.

    The camera is known upstream (registered in Redis or listed by the gateway) but sent
    nothing in time, or upstream could not be reached at all (``reason`` says which).
    """

    def __init__(self, camera: str, timeout: float, reason: str) -> None:
        super().__init__(f"no frame from camera {camera} within {timeout:g}s: {reason}")
        self.camera = camera
        self.timeout = timeout
        self.reason = reason


class CameraNotFound(NoFrames):
    """No frame arrived in time and upstream does not know the camera at all (a typo?)."""


class AuthRefused(FramebusError):
    """Upstream refused our credentials (HTTP 401/403, or a Redis AUTH/ACL error): retrying
    with the same token or password cannot help, so this is raised at once."""


class PublishFailed(FramebusError):
    """A one-shot publish could not deliver its frame or result (``reason`` says why)."""


def auth_refusal(error: BaseException) -> str | None:
    """A description when ``error`` (or its cause) means the credentials were refused."""
    cause = error.__cause__ or error
    if isinstance(cause, aiohttp.ClientResponseError) and cause.status in (401, 403):
        return f"HTTP {cause.status} {cause.message}".strip()
    if isinstance(cause, (AuthenticationError, AuthorizationError, NoPermissionError)):
        return f"Redis refused the credentials: {cause}"
    return None
