"""shared/logs.py: folded warnings name what they folded; client churn is logged, but bounded."""

from __future__ import annotations

import asyncio
import logging

import pytest

from shared.logs import MAX_FOLD_KEYS, ChurnLog, RateLimitedLog

LOGGER = logging.getLogger("framebus.test.folding")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == LOGGER.name]


def test_repeats_of_one_message_are_folded_into_its_next_line(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    limited = RateLimitedLog(LOGGER, interval=10, clock=clock)
    with caplog.at_level(logging.WARNING, LOGGER.name):
        for _ in range(100):
            limited.warning("dropping frames")
        clock.now += 10
        limited.warning("dropping frames")
    assert messages(caplog) == [
        "dropping frames",
        "dropping frames (99 more 'dropping frames' folded since the last such line)",
    ]


def test_folded_rejections_are_never_attributed_to_another_reason(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    limited = RateLimitedLog(LOGGER, interval=10, clock=clock)
    template = "rejected ingest (%s): %s"
    with caplog.at_level(logging.WARNING, LOGGER.name):
        limited.warning(template, "not_jpeg", "missing SOI", key="not_jpeg")
        limited.warning(template, "not_jpeg", "missing SOI", key="not_jpeg")
        limited.warning(template, "not_jpeg", "missing SOI", key="not_jpeg")
        clock.now += 11
        limited.warning(template, "body_timeout", "body not received within 5s", key="body_timeout")
    lines = messages(caplog)
    assert lines[0] == "rejected ingest (not_jpeg): missing SOI"
    # The two folded not_jpeg get their own line naming them; the body_timeout line has no count.
    assert "2 more 'not_jpeg' folded" in lines[1]
    assert lines[2] == "rejected ingest (body_timeout): body not received within 5s"


def test_without_a_key_the_fold_names_its_template(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    limited = RateLimitedLog(LOGGER, interval=10, clock=clock)
    with caplog.at_level(logging.WARNING, LOGGER.name):
        limited.warning("source %s lost", "a")
        limited.warning("source %s lost", "b")
        limited.warning("sink %s down", "redis")  # another template: its own window, logged now
        clock.now += 10
        limited.warning("source %s lost", "c")
    assert messages(caplog) == [
        "source a lost",
        "sink redis down",
        "source c lost (1 more 'source %s lost' folded since the last such line)",
    ]


def test_the_number_of_fold_windows_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    limited = RateLimitedLog(LOGGER, interval=10, clock=FakeClock())
    with caplog.at_level(logging.WARNING, LOGGER.name):
        for index in range(MAX_FOLD_KEYS * 3):
            limited.warning("camera %s", index, key=f"camera-{index}")
    # The first MAX_FOLD_KEYS kinds each log once; every later one shares the "other" window.
    assert len(messages(caplog)) == MAX_FOLD_KEYS + 1


def test_a_burst_of_joins_and_leaves_writes_a_bounded_number_of_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    churn = ChurnLog(LOGGER, "subscriber", burst=10, interval=1.0, clock=clock)
    with caplog.at_level(logging.INFO, LOGGER.name):
        for index in range(500):
            churn.joined("subscriber %d joined", index)
            churn.left("subscriber %d left", index)
            clock.now += 0.0015  # 500 connects (and 500 leaves) in 0.75 s
        clock.now += 1.0
        churn.joined("subscriber %d joined", 999)
    lines = messages(caplog)
    assert lines[:2] == ["subscriber 0 joined", "subscriber 0 left"]
    assert len(lines) == 10 + 1 + 1
    assert lines[10] == (
        "subscriber churn: 495 joins and 495 leaves not logged one by one (over 10 lines per 1s)"
    )
    assert lines[11] == "subscriber 999 joined"


def test_a_quiet_period_logs_every_event() -> None:
    clock = FakeClock()
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.INFO)
    try:
        churn = ChurnLog(LOGGER, burst=3, interval=1.0, clock=clock)
        for index in range(20):
            churn.joined("client %d joined", index)
            clock.now += 0.5  # two a second: under the burst, each is logged
    finally:
        LOGGER.removeHandler(handler)
    assert records == [f"client {index} joined" for index in range(20)]


async def test_the_churn_summary_appears_even_if_no_event_follows(caplog: pytest.LogCaptureFixture) -> None:
    churn = ChurnLog(LOGGER, "browser", burst=2, interval=0.05)
    with caplog.at_level(logging.INFO, LOGGER.name):
        for index in range(10):
            churn.joined("browser %d joined", index)
        await asyncio.sleep(0.2)
    assert messages(caplog)[-1].startswith("browser churn: 8 joins and 0 leaves")
