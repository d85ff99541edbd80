"""framebus for algorithm authors: subscribe to camera frames, publish frames and results.

The services live in ``services/``; this package is what a program outside them imports::

    import framebus

    for frame in framebus.subscribe("cam0", url="redis://localhost:6379/0"):
        image = frame.image(scale=2)          # numpy BGR, decoded on demand
        framebus.publish_results(frame, boxes=[{"x": 10, "y": 20, "w": 50, "h": 40, "label": "cat"}])

See README.md, "For algorithm authors", and docs/protocol.md, "Client library".
"""

from framebus.client import Subscription, SubscriptionStats, subscribe
from framebus.errors import AuthRefused, CameraNotFound, FramebusError, NoFrames, PublishFailed
from framebus.frames import Frame, UndecodableFrame
from framebus.publish import AsyncPublisher, Publisher, PublishStats, publish
from framebus.results import (
    AsyncResultsPublisher,
    Box,
    FrameResult,
    ResultsPublisher,
    latest_results,
    publish_results,
)
from shared.results import ResultError

__all__ = [
    "AsyncPublisher",
    "AsyncResultsPublisher",
    "AuthRefused",
    "Box",
    "CameraNotFound",
    "Frame",
    "FrameResult",
    "FramebusError",
    "NoFrames",
    "PublishFailed",
    "PublishStats",
    "Publisher",
    "ResultError",
    "ResultsPublisher",
    "Subscription",
    "SubscriptionStats",
    "UndecodableFrame",
    "latest_results",
    "publish",
    "publish_results",
    "subscribe",
]
