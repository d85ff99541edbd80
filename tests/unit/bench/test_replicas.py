"""The replicas case's pure parts: what counts as carried, the search, the figures, the output."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from typing import Any

from bench.replicas import (
    GeneratorFigures,
    bucket_percentile,
    carried_ratio,
    frame_fractions,
    judge,
    latency_percentiles,
    limits,
    next_probe,
    ratio_at_least,
    replicas_rows,
    replicas_verdicts,
    split,
)
from bench.results import ReplicasResult, ReplicaStep
from bench.verdicts import Verdicts
from bench.ws_subscribers import Tally, Window, header_fields, subscriber_urls
from shared.wire import FrameMeta
from shared.wire_ws import to_ws_message

BOUND_MS = 15.0


def step(subscribers: int = 100, replicas: int = 1, **changes: Any) -> ReplicaStep:
    """A step every criterion passes, unless ``changes`` say otherwise."""
    base = ReplicaStep(
        replicas=replicas,
        subscribers=subscribers,
        carried=False,
        reason="not judged",
        seconds=5.0,
        failed_connects=0,
        open_at_end=subscribers,
        camera_fps=30.0,
        expected_frames=150,
        min_frames=149,
        duplicate_frames=0,
        median_frames=150.0,
        min_frame_fraction=0.99,
        median_frame_fraction=1.0,
        latency_p50_ms=8.0,
        latency_p95_ms=12.0,
        latency_p99_ms=14.0,
        gateway_cpu_per_second=[0.3] * replicas,
        capture_cpu_per_second=0.1,
        redis_cpu_per_second=0.05,
        load_cpu_per_second=0.3,
        cpu_utilisation=0.4,
        drops={},
    )
    return dataclasses.replace(base, **changes)


def judged(**changes: Any) -> ReplicaStep:
    return judge(step(**changes), 30.0, BOUND_MS)


def test_a_step_meeting_every_criterion_is_carried() -> None:
    result = judged()
    assert result.carried
    assert result.reason == ""


def test_a_subscriber_below_95_percent_of_the_frames_is_not_carried() -> None:
    assert judged(min_frame_fraction=0.95).carried
    result = judged(min_frame_fraction=0.94)
    assert not result.carried
    assert "slowest subscriber got 94%" in result.reason


def test_p50_above_the_bound_is_not_carried() -> None:
    assert judged(latency_p50_ms=BOUND_MS).carried
    result = judged(latency_p50_ms=BOUND_MS + 0.1)
    assert not result.carried
    assert "p50 15.1 ms > 15.0 ms" in result.reason


def test_no_latency_at_all_is_not_carried_once_there_is_a_bound() -> None:
    assert not judged(latency_p50_ms=None).carried
    # The baseline step, judged before a bound exists, is judged on its frames alone.
    assert judge(step(latency_p50_ms=None), 30.0, None).carried


def test_a_camera_that_fell_behind_means_the_step_is_not_carried() -> None:
    assert judged(camera_fps=28.5).carried
    result = judged(camera_fps=28.0)
    assert not result.carried
    assert "camera published 28.0 fps" in result.reason


def test_failed_connects_and_closed_subscribers_are_not_carried() -> None:
    assert "3 could not connect" in judged(failed_connects=3, open_at_end=97).reason
    assert "2 closed" in judged(open_at_end=98).reason


def test_every_reason_is_given() -> None:
    reason = judged(min_frame_fraction=0.5, latency_p50_ms=40.0).reason
    assert "slowest subscriber" in reason
    assert "p50 40.0 ms" in reason


def test_limits_are_the_most_carried_below_the_fewest_failed() -> None:
    assert limits([]) == (0, None)
    assert limits([judged(subscribers=25), judged(subscribers=50)]) == (50, None)
    failed = judged(subscribers=100, min_frame_fraction=0.5)
    assert limits([judged(subscribers=50), failed, judged(subscribers=75)]) == (75, 100)
    # A step carried above one that failed (noise) does not raise the figure.
    assert limits([judged(subscribers=50), failed, judged(subscribers=200)]) == (50, 100)


def test_the_search_doubles_then_bisects_until_close_enough() -> None:
    assert next_probe(0, None, 25, 0.1, 1000) == 25
    assert next_probe(25, None, 25, 0.1, 1000) == 50
    assert next_probe(800, None, 25, 0.1, 1000) == 1000  # capped
    assert next_probe(1000, None, 25, 0.1, 1000) is None  # nothing above the cap
    assert next_probe(100, 200, 25, 0.1, 1000) == 150
    assert next_probe(150, 200, 25, 0.1, 1000) == 175
    assert next_probe(190, 200, 25, 0.1, 1000) is None  # within 10% of 190
    assert next_probe(0, 25, 25, 0.1, 1000) == 12  # even the first step failed: look below it
    assert next_probe(0, 2, 25, 0.1, 1000) is None


def test_bucket_percentile_is_nearest_rank_at_the_bucket_upper_edge() -> None:
    assert bucket_percentile(Counter(), 0.1, 50) is None
    buckets = Counter({10: 50, 20: 45, 100: 5})  # 1.0-1.1 ms, 2.0-2.1 ms, 10.0-10.1 ms
    assert bucket_percentile(buckets, 0.1, 50) == 1.1
    assert bucket_percentile(buckets, 0.1, 51) == 2.1
    assert bucket_percentile(buckets, 0.1, 95) == 2.1
    assert bucket_percentile(buckets, 0.1, 99) == 10.1


def test_split_spreads_evenly() -> None:
    assert split(25, 2) == [13, 12]
    assert split(4, 2) == [2, 2]
    assert sum(split(101, 3)) == 101


def test_ratio_needs_one_replica_to_carry_something() -> None:
    assert carried_ratio({"1": 100, "2": 190}) == 1.9
    assert carried_ratio({"1": 0, "2": 50}) is None


def test_the_judged_ratio_is_a_lower_bound_over_where_one_replica_failed() -> None:
    assert ratio_at_least({"1": 100, "2": 250}, 125) == 2.0
    assert ratio_at_least({"1": 100, "2": 250}, None) is None


def figures(frames: list[int], expected: int, buckets: dict[int, int]) -> GeneratorFigures:
    return GeneratorFigures(
        frames=frames,
        duplicates=0,
        open=len(frames),
        expected=expected,
        buckets=Counter(buckets),
        bucket_ms=0.1,
    )


def test_fractions_are_per_subscriber_of_its_own_process_window() -> None:
    result = frame_fractions([figures([30, 27], 30, {}), figures([20], 20, {}), figures([1], 0, {})])
    assert result == [1.0, 0.9, 1.0, 0.0]


def test_latency_percentiles_merge_every_process() -> None:
    merged = latency_percentiles([figures([1], 1, {10: 1}), figures([3], 3, {50: 3})])
    assert merged == [5.1, 5.1, 5.1]
    assert latency_percentiles([]) == [None, None, None]


def test_a_subscribers_process_line_parses() -> None:
    tallies = [Tally(), Tally()]
    window = Window()
    message = ws_message(seq=7, sent_ns=10**18)
    window.record(tallies[0], message)  # before the window: sets the starting sequence only
    window.start(tallies)
    window.record(tallies[0], ws_message(seq=8, sent_ns=10**18))
    window.record(tallies[1], ws_message(seq=9, sent_ns=10**18))
    window.record(tallies[1], ws_message(seq=9, sent_ns=10**18))  # sent twice: not a frame more
    line = json.loads(json.dumps(window.summary(tallies)))
    parsed = GeneratorFigures.parse(line)
    assert parsed.frames == [1, 1]
    assert parsed.duplicates == 1
    assert parsed.expected == 2
    assert sum(parsed.buckets.values()) == 2


def ws_message(seq: int, sent_ns: int) -> bytes:
    meta = FrameMeta(camera="cam0", seq=seq, captured_ns=sent_ns, sent_ns=sent_ns, width=16, height=16)
    return to_ws_message(meta, b"\xff\xd8\xff\xd9")


def test_header_fields_reads_the_gateway_message() -> None:
    assert header_fields(ws_message(seq=42, sent_ns=1_700_000_000_000_000_000)) == (
        42,
        1_700_000_000_000_000_000,
    )


def test_subscriber_urls_go_round_robin_over_the_gateways() -> None:
    urls = subscriber_urls(["http://127.0.0.1:1", "http://127.0.0.1:2/"], "cam0", 3)
    assert urls == [
        "ws://127.0.0.1:1/cameras/cam0/ws",
        "ws://127.0.0.1:2/cameras/cam0/ws",
        "ws://127.0.0.1:1/cameras/cam0/ws",
    ]
    assert subscriber_urls(["http://h:1"], "cam0", 1, pull=True) == ["ws://h:1/cameras/cam0/ws?pull=1"]


def test_rows_and_verdicts_state_counts_cpu_and_the_ratio() -> None:
    steps = [
        judged(subscribers=100),
        judged(subscribers=200, latency_p50_ms=30.0),
        judge(step(subscribers=200, replicas=2), 30.0, BOUND_MS),
        judge(
            step(
                subscribers=400,
                replicas=2,
                min_frame_fraction=0.8,
                duplicate_frames=3,
                drops={"sequence_restarts": 3.0},
            ),
            30.0,
            BOUND_MS,
        ),
    ]
    result = ReplicasResult(
        camera="cam0 720p@30",
        fps=30.0,
        load_generators=8,
        cpus=2,
        replica_cpu_budget=0.25,
        no_budget_because=None,
        quick=True,
        min_frame_fraction=0.95,
        latency_slack_ms=10.0,
        baseline_p50_ms=5.0,
        latency_bound_ms=BOUND_MS,
        carried={"1": 100, "2": 200},
        bounded={"1": True, "2": True},
        ratio=2.0,
        ratio_at_least=1.0,
        steps=steps,
        seconds=50.0,
    )
    rows = replicas_rows(result)
    assert any("1 replica: 100 subscribers carried" in row and "0.30" in row for row in rows)
    assert any("1 replica: 100 subscribers carried (200 not; 100 per replica)" in row for row in rows)
    assert any("2 replicas: 200 subscribers carried (400 not; 100 per replica)" in row for row in rows)
    (failed_row,) = [row for row in rows if "slowest subscriber got 80%" in row]
    assert "3 duplicate frames; sequence_restarts=3" in failed_row
    out = Verdicts()
    replicas_verdicts(result, out)
    (ratio_line,) = [line for line in out.lines if "2 replicas / 1 " in line]
    assert "2.00" in ratio_line and "MET" in ratio_line
    (bound_line,) = [line for line in out.lines if "2 replicas / 1, at least" in line]
    assert "1.00" in bound_line  # 200 carried by two / 200 failed by one
    assert any("a budget of 0.25 cores each" in row for row in rows)
    json.dumps(dataclasses.asdict(result))  # the result file's JSON
