"""The cache facade on its own: entry encoding, the byte and entry bounds, expiry, never raising, Redis values from
elsewhere."""

from __future__ import annotations

import logging

import pytest

from graph.data.cache import TEXT, AnswerCache, Entry, open_cache
from graph.data.lru import ExpiringLRU
from graph.data.responses import RESPONSES, CachedResponse
from tests.redis_server import RedisServer


def test_entry_round_trip() -> None:
    entry = Entry("ok", {"app_name": "小程序demo", "app_logo": "https://x/y.png"}, 1_700_000_000.5)
    assert Entry.loads(entry.dumps()) == entry


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[]",
        '{"k": "ok"}',
        '{"k": "maybe", "p": {}, "t": 1}',
        '{"k": "ok", "p": [], "t": 1}',
        '{"k": "ok", "p": {}, "t": "soon"}',
    ],
)
def test_damaged_entries_are_misses(text: str) -> None:
    assert Entry.loads(text) is None


@pytest.mark.parametrize("text", ["[]", '["body", true, 1, 2, "op", "ok"]', '["b", true, "x", 2, "op", "ok", []]', "{"])
def test_damaged_responses_are_misses(text: str) -> None:
    # Opened (sealed by an instance of this fleet) yet not a response of this version: a miss, never an error.
    assert RESPONSES.loads(text.encode()) is None


def test_responses_and_documents_read_back_from_bytes() -> None:
    # Redis values come back as bytes (no decoding in the backend): every codec reads them, or says None.
    response = CachedResponse(b'{"data":{"a":"\xe5\xb0\x8f"}}', True, 1.0, 61.0, "Q", "ok", ("ALIPAY_BUSINESS_ERROR",))
    assert RESPONSES.loads(RESPONSES.dumps(response).encode()) == response
    assert TEXT.loads(b"{ a }") == "{ a }"
    assert TEXT.loads(b"\xff\xfe{ a }") is None


def test_memory_backend_evicts_least_recently_used() -> None:
    backend: ExpiringLRU[str, int] = ExpiringLRU(1000, 2)
    backend.put("a", 1, 10)
    backend.put("b", 2, 10)
    assert backend.get("a") == 1  # a is now the most recently used
    backend.put("c", 3, 10)
    assert len(backend) == 2
    assert backend.get("b") is None
    assert backend.get("a") == 1
    backend.put("a", 10, 10)  # overwriting keeps the size
    assert (len(backend), backend.size) == (2, 20)
    assert backend.get("c") == 3


def test_memory_backend_is_bounded_in_bytes() -> None:
    backend: ExpiringLRU[str, str] = ExpiringLRU(1000, 10**6)
    for i in range(100):
        assert backend.put(f"k{i}", "x", 100)
    assert (len(backend), backend.size) == (10, 1000)  # the ten most recent
    assert backend.get("k89") is None
    assert backend.get("k99") == "x"
    assert not backend.put("k99", "big", 251)  # over a quarter of the bound: not kept, and the old value is gone
    assert (backend.get("k99"), len(backend), backend.size) == (None, 9, 900)


async def test_memory_cache_stays_bounded_under_many_keys() -> None:
    cache = open_cache("memory://", max_bytes=1 << 30, max_entries=100)
    for i in range(5000):
        await cache.set(f"k{i}", Entry("ok", {"i": i}, 0.0), 60)
    assert len(cache.backend) == 100
    assert await cache.get("k4999") == Entry("ok", {"i": 4999}, 0.0)
    assert await cache.get("k0") is None
    await cache.close()


async def test_zero_ttl_stores_nothing() -> None:
    cache = open_cache("memory://", max_bytes=1 << 20, max_entries=10)
    await cache.set("k", Entry("ok", {}, 0.0), 0)
    assert await cache.get("k") is None
    assert await cache.ping()


async def test_redis_values_written_by_others_are_misses(redis_server: RedisServer) -> None:
    cache = open_cache(redis_server.url, max_bytes=1 << 20, max_entries=10)
    try:
        await cache.set("good", Entry("ok", {"a": 1}, 2.0), 1.5)
        assert await cache.get("good") == Entry("ok", {"a": 1}, 2.0)
        ttl_ms = int((redis_server.command("PTTL", "alipay-miniapp-graph:v1:good") or ":0").lstrip(":"))
        assert 0 < ttl_ms <= 1500  # a fractional TTL is kept in milliseconds
        redis_server.command("SET", "alipay-miniapp-graph:v1:bad", "garbage")
        assert await cache.get("bad") is None
        # Not UTF-8: a miss like any unreadable value, not a backend error (which would flip readiness).
        redis_server.call("SET", "alipay-miniapp-graph:v1:binary", b"\xff\xfe{}")
        assert await cache.get("binary") is None
        assert cache.healthy
        assert (cache.lookups["error"], cache.errors["get"]) == (0, 0)
    finally:
        await cache.close()


async def test_unreachable_redis_logs_once_and_recovers(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    cache: AnswerCache[Entry] = open_cache(redis_server.url, max_bytes=1 << 20, max_entries=10)
    try:
        redis_server.stop()
        with caplog.at_level(logging.INFO, logger="graph.data.cache"):
            for _ in range(5):
                assert await cache.get("k") is None
                await cache.set("k", Entry("ok", {}, 0.0), 10)
            assert not await cache.ping()
            assert not cache.healthy
            redis_server.start()
            for _ in range(50):
                if await cache.ping():
                    break
            assert cache.healthy
        messages = [r.getMessage() for r in caplog.records]
        assert messages.count("cache backend unavailable; answering from the gateway") == 1
        assert messages.count("cache backend recovered") == 1
    finally:
        await cache.close()


def test_memory_entries_expire_when_read() -> None:
    now = [100.0]
    backend: ExpiringLRU[str, int] = ExpiringLRU(1000, 10, clock=lambda: now[0])
    backend.put("short", 1, 10, ttl_s=5)
    backend.put("forever", 2, 10)
    now[0] = 104.9
    assert backend.get("short") == 1
    now[0] = 105.0
    assert backend.get("short") is None
    assert (len(backend), backend.size) == (1, 10)  # the expired entry is gone, not just hidden
    assert backend.get("forever") == 2
