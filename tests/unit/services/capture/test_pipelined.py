"""Capture's pipelined XADDs against a real redis-server: order kept, window bounded, errors
owned by the frames they belong to, a silent server fails what is in flight and is left."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import cast

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from services.capture.pipelined import IN_FLIGHT_FRAMES, PipelinedAppender
from shared.redisconn import connect
from shared.stream_writer import StreamWriter
from shared.wire import FrameMeta, stream_key
from tests.fixtures.servers import RedisServer

JPEG = b"\xff\xd8" + bytes(200_000) + b"\xff\xd9"  # big enough to span many packets


def meta(seq: int) -> FrameMeta:
    now = time.time_ns()
    return FrameMeta("cam0", seq, now, now, 64, 48)


async def seqs_in_stream(client: aioredis.Redis) -> list[int]:
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await client.xrange(stream_key("cam0")))
    return [int(fields[b"seq"]) for _, fields in entries]


class Answers(dict[int, BaseException | None]):
    """seq -> outcome, as the appender reports them (in the order frames were written)."""

    def __call__(self, seq: int, error: BaseException | None) -> None:
        assert seq not in self, f"frame {seq} answered twice"
        assert all(earlier < seq for earlier in self), "answers out of order"
        self[seq] = error


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    redis = connect(redis_server.url, socket_timeout=0.5)
    assert isinstance(redis, aioredis.Redis)
    yield redis
    await redis.aclose()


@pytest.fixture
def answers() -> Answers:
    return Answers()


@pytest.fixture
async def appender(client: aioredis.Redis, answers: Answers) -> AsyncIterator[PipelinedAppender[int]]:
    pipelined = PipelinedAppender(client, StreamWriter(client, maxlen=50, idle_seconds=300), answers)
    yield pipelined
    await pipelined.close()


async def test_frames_written_back_to_back_land_in_capture_order(
    client: aioredis.Redis, appender: PipelinedAppender[int], answers: Answers
) -> None:
    most_in_flight = 0
    for seq in range(1, 31):
        await appender.write(meta(seq), JPEG, seq)
        most_in_flight = max(most_in_flight, appender.in_flight)
    await appender.settle()
    assert answers == {seq: None for seq in range(1, 31)}
    assert await seqs_in_stream(client) == list(range(1, 31))
    assert 1 < most_in_flight <= IN_FLIGHT_FRAMES, "frames were not pipelined, or the window leaked"
    assert await client.zscore("framebus:registry", "cam0") is not None


async def test_an_error_reply_fails_its_frame_and_the_connection_carries_on(
    client: aioredis.Redis, appender: PipelinedAppender[int], answers: Answers
) -> None:
    await client.set(stream_key("cam0"), "not a stream")
    await appender.write(meta(1), JPEG, 1)
    await appender.settle()
    assert isinstance(answers[1], ResponseError) and "WRONGTYPE" in str(answers[1])
    await client.delete(stream_key("cam0"))
    await appender.write(meta(2), JPEG, 2)
    await appender.settle()
    assert answers[2] is None
    assert await client.xlen(stream_key("cam0")) == 1


async def test_a_server_that_stops_answering_fails_what_is_in_flight_then_a_new_connection_works(
    client: aioredis.Redis, appender: PipelinedAppender[int], answers: Answers
) -> None:
    await client.execute_command("CLIENT", "PAUSE", "1500", "WRITE")
    paused_at = time.monotonic()
    for seq in (1, 2):
        await appender.write(meta(seq), JPEG, seq)
    await appender.settle()  # the socket timeout (0.5 s) ends the wait
    assert set(answers) == {1, 2} and all(error is not None for error in answers.values()), answers
    assert appender.in_flight == 0
    await asyncio.sleep(max(0.0, paused_at + 1.6 - time.monotonic()))  # the pause ends
    await appender.write(meta(3), JPEG, 3)
    await appender.settle()
    assert answers[3] is None
    assert (await seqs_in_stream(client))[-1] == 3
