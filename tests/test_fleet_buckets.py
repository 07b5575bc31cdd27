"""SharedBuckets on a real redis-server: one bucket for the fleet, Redis's clock, keys that expire, and the fallback
to the process's own buckets (said once) when Redis goes away and back."""

from __future__ import annotations

import asyncio
import logging

import pytest
from redis.asyncio import Redis

from graph.fleet.buckets import SharedBuckets
from graph.fleet.redis import PREFIX, open_redis
from tests.redis_server import RedisServer


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _client(server: RedisServer) -> Redis:
    client = open_redis(server.url)
    assert client is not None
    return client


async def test_two_instances_spend_from_one_bucket(redis_server: RedisServer) -> None:
    one, two = _client(redis_server), _client(redis_server)  # two processes' clients: nothing shared but Redis
    try:
        first = SharedBuckets(one, 60, "rate", what="rate limits")
        second = SharedBuckets(two, 60, "rate", what="rate limits")
        waits = [await (first if n % 2 else second).take("key:abc") for n in range(60)]
        assert waits == [0.0] * 60
        # The 61st, on either: a token is up to 1 s away (less by what refilled while the 60 were taken).
        assert 0.5 < await first.take("key:abc") <= 1.0
        assert 0.5 < await second.take("key:abc") <= 1.0
        assert await second.take("key:other") == 0.0  # another caller has its own bucket
        assert await SharedBuckets(one, 60, "failures", what="x").take("key:abc") == 0.0  # and another name
        assert first.shared
        assert second.shared
        assert len(first.local) == 0  # nothing was spent locally
    finally:
        await one.aclose()
        await two.aclose()


async def test_refills_at_the_rate_with_costs_and_peeks(redis_server: RedisServer) -> None:
    client = _client(redis_server)
    try:
        buckets = SharedBuckets(client, 600, "rate", what="rate limits")  # ten a second
        assert await buckets.remaining("c") == 600.0
        assert await buckets.take("c", cost=600) == 0.0
        assert 0.0 < await buckets.wait("c") <= 0.1  # one token is at most 0.1 s away
        assert 0.5 < await buckets.wait("c", cost=10) <= 1.0
        assert await buckets.remaining("c") < 1.0  # peeking spent nothing, and took nothing
        await asyncio.sleep(0.25)
        assert await buckets.take("c") == 0.0
        assert 0.5 < await buckets.remaining("c") < 3.0
        assert await buckets.take("c", cost=601) > 59.0  # more than it holds: a wait past a full refill
    finally:
        await client.aclose()


async def test_keys_are_hashed_under_the_prefix_and_expire_when_full(redis_server: RedisServer) -> None:
    client = _client(redis_server)
    try:
        buckets = SharedBuckets(client, 60, "rate", what="rate limits")
        caller = "ip:" + "x" * 10_000  # anything a client sent
        await buckets.take(caller, cost=30)
        keys = await client.keys("*")
        assert keys == [buckets.key(caller).encode()]
        assert keys[0].startswith(f"{PREFIX}bucket:rate:".encode())
        assert len(keys[0]) < 100
        assert 29_000 < await client.pttl(keys[0]) <= 30_000  # full again in 30 s: then a missing key is the same
        assert await buckets.wait("nobody") == 0.0
        assert await client.dbsize() == 1  # peeking writes nothing
    finally:
        await client.aclose()


async def test_without_redis_the_buckets_are_the_process_own() -> None:
    buckets = SharedBuckets(None, 2, "rate", what="rate limits")
    assert [await buckets.take("a") for _ in range(3)][:2] == [0.0, 0.0]
    assert await buckets.wait("a") > 0
    assert await buckets.remaining("b") == 2.0
    assert not buckets.shared
    with pytest.raises(ValueError, match="positive"):
        SharedBuckets(None, 0, "rate", what="rate limits")


async def test_redis_going_away_falls_back_once_and_comes_back(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    client, clock = _client(redis_server), Clock()
    buckets = SharedBuckets(client, 3, "rate", what="rate limits", clock=clock)
    try:
        assert [await buckets.take("k") for _ in range(3)] == [0.0] * 3
        assert await buckets.take("k") > 0  # the shared bucket is empty
        redis_server.stop()
        with caplog.at_level(logging.INFO, logger="graph.fleet"):
            # Alone now: a full local bucket of its own, and one WARNING however many requests.
            assert [await buckets.take("k") for _ in range(4)] == [0.0] * 3 + [20.0]
            assert not buckets.shared
            redis_server.start()
            assert await buckets.take("other") == 0.0  # within RETRY_S: Redis is not asked yet
            assert await client.dbsize() == 0
            clock.now += 1.5
            assert await buckets.take("k") == 0.0  # asked again: the (new, empty) Redis has a full bucket
            assert buckets.shared
        fleet = [r for r in caplog.records if r.name == "graph.fleet"]
        assert [(r.levelname, "rate limits" in r.getMessage()) for r in fleet] == [("WARNING", True), ("INFO", True)]
    finally:
        await client.aclose()
