"""A transport link reports one state change per outage, not one per failure."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY

from shared.transport import TransportLink


def sample(name: str, transport: str) -> float:
    return REGISTRY.get_sample_value(name, {"transport": transport}) or 0.0


def test_an_outage_logs_once_flips_the_gauge_and_counts_one_reconnect(
    caplog: pytest.LogCaptureFixture,
) -> None:
    link = TransportLink("unit-test", "transport", logging.getLogger("framebus.test"))
    assert not link.readiness().ok
    reconnects = sample("framebus_transport_reconnects_total", "unit-test")
    with caplog.at_level(logging.INFO):
        link.up()
        for _ in range(5):
            link.down(ConnectionError("Error 111 connecting"), retry_in=2)
        assert sample("framebus_transport_up", "unit-test") == 0
        assert link.readiness().detail == "ConnectionError: Error 111 connecting"
        link.up()
        link.up()
    assert sample("framebus_transport_up", "unit-test") == 1
    assert sample("framebus_transport_reconnects_total", "unit-test") == reconnects + 1
    assert [r.getMessage() for r in caplog.records] == [
        "unit-test transport connected",
        "unit-test transport lost (ConnectionError: Error 111 connecting); retrying in 2s",
        "unit-test transport connected",
    ]
