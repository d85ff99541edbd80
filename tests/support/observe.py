"""What tests read back from running services: a /metrics scrape, the viewer's newest live frame."""

from __future__ import annotations

import cv2
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures import wait_until
from tests.fixtures.processes import ServiceProcess


def scrape(service: ServiceProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """All samples of one /metrics scrape, keyed by (name, sorted labels)."""
    _, body = service.get("/metrics")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def decode(jpeg: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a decodable JPEG"
    return image


def live_snapshot(viewer: ServiceProcess, camera: str = "cam0") -> tuple[int, bytes]:
    """(seq, jpeg) of the viewer's newest live frame; waits for one."""
    result: dict[str, tuple[int, bytes]] = {}

    def ready() -> bool:
        status, body = viewer.get(f"/snapshot.jpg?camera={camera}")
        if status != 200:
            return False
        stats = viewer.get_json(f"/api/stats?camera={camera}")[1]
        if not stats["live"]:
            return False
        result["frame"] = (int(stats["seq"]), body)
        return True

    wait_until(ready, timeout=15, message=f"no live frame of {camera}:\n{viewer.log_tail()}")
    return result["frame"]
