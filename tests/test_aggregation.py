"""The aggregation data path end to end: cache, single-flight, Redis shared by instances, tenant isolation.

Counts come from the sandbox gateway's call log: what Alipay would have seen, not our internals.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from graph.sandbox import Fault, SandboxGateway
from tests.conftest import MERCHANT_TOKEN, OTHER_MERCHANT_TOKEN
from tests.redis_server import RedisServer

STATUS = "query($v: String!) { miniAppVersion(appVersion: $v) { appVersion status } }"
VERSIONS = ["0.0.1", "0.0.2", "0.1.0", "1.0.0", "1.1.0-beta"]


async def ask(url: str, version: str = "0.0.1", **headers: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        response = await http.post("/graphql", json={"query": STATUS, "variables": {"v": version}}, headers=headers)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_repeated_queries_are_served_from_the_cache(graph_url: str, sandbox: SandboxGateway) -> None:
    first = await ask(graph_url)
    assert first["extensions"]["cacheAge"] == 0
    second = await ask(graph_url)
    assert second["data"] == first["data"]
    assert second["extensions"]["cacheAge"] >= 0
    assert len(sandbox.calls) == 1


async def test_cache_age_grows(graph_url: str, sandbox: SandboxGateway) -> None:
    await ask(graph_url)
    await asyncio.sleep(1.1)
    assert (await ask(graph_url))["extensions"]["cacheAge"] >= 1


async def test_no_cache_header_bypasses_and_refreshes(start_app: Callable[..., str], sandbox: SandboxGateway) -> None:
    graph_url = start_app(cache_min_refresh_s=1.0)
    await ask(graph_url)
    await asyncio.sleep(1.1)
    fresh = await ask(graph_url, **{"Cache-Control": "no-cache"})
    assert fresh["extensions"]["cacheAge"] == 0
    assert len(sandbox.calls) == 2
    again = await ask(graph_url)
    assert again["extensions"]["cacheAge"] == 0  # the fresh answer replaced the older one
    assert len(sandbox.calls) == 2
    await ask(graph_url, **{"Cache-Control": "max-age=0"})
    assert len(sandbox.calls) == 2  # within GRAPH_CACHE_MIN_REFRESH_S of the refresh: the answer it got serves
    await asyncio.sleep(1.1)
    await ask(graph_url, **{"Cache-Control": "max-age=0"})
    assert len(sandbox.calls) == 3


async def test_single_flight_under_100_concurrent_cold_queries(graph_url: str, sandbox: SandboxGateway) -> None:
    sandbox.fail_next(Fault.slow(0.5), times=100)
    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(base_url=graph_url, timeout=30, limits=limits) as http:
        responses = await asyncio.gather(
            *(http.post("/graphql", json={"query": STATUS, "variables": {"v": "0.0.1"}}) for _ in range(100))
        )
    assert {r.status_code for r in responses} == {200}
    assert all(r.json()["data"]["miniAppVersion"]["appVersion"] == "0.0.1" for r in responses)
    assert len(sandbox.calls) == 1


async def test_tenants_never_share_answers(graph_url: str, sandbox: SandboxGateway) -> None:
    tenants: list[dict[str, str]] = [
        {"X-Alipay-App-Auth-Token": MERCHANT_TOKEN},
        {"X-Alipay-App-Auth-Token": OTHER_MERCHANT_TOKEN},
        {},
    ]
    for headers in tenants:
        await ask(graph_url, **headers)
    assert len(sandbox.calls) == 3
    assert len({c.app_auth_token_digest for c in sandbox.calls}) == 3
    for headers in tenants:
        await ask(graph_url, **headers)
    assert len(sandbox.calls) == 3  # each tenant's second ask hit its own entry


async def test_business_errors_are_cached_briefly_transient_failures_never(
    start_app: Callable[..., str], sandbox: SandboxGateway
) -> None:
    url = start_app(cache_error_ttl_s=0.5)
    for _ in range(2):
        body = await ask(url, "9.9.9")
        assert body["errors"][0]["extensions"]["code"] == "ALIPAY_BUSINESS_ERROR"
    assert len(sandbox.calls) == 1
    await asyncio.sleep(0.6)
    await ask(url, "9.9.9")
    assert len(sandbox.calls) == 2  # the error entry expired

    sandbox.reset()
    sandbox.fail_next(Fault.BUSY, times=3, app_version="0.0.2")
    busy = await ask(url, "0.0.2")
    assert busy["errors"][0]["extensions"]["code"] == "ALIPAY_UNAVAILABLE"
    assert len(sandbox.calls) == 3
    ok = await ask(url, "0.0.2")
    assert "errors" not in ok
    assert len(sandbox.calls) == 4  # the busy answer was not cached

    sandbox.reset()
    sandbox.fail_next(Fault.UNSIGNED_ERROR, times=1, app_version="0.1.0")
    assert (await ask(url, "0.1.0"))["errors"][0]["extensions"]["code"] == "ALIPAY_BUSINESS_ERROR"
    assert "errors" not in await ask(url, "0.1.0")
    assert len(sandbox.calls) == 2  # an unsigned error is never cached


async def test_memory_cache_stays_at_its_bound_least_recently_used_goes(
    start_app: Callable[..., str], sandbox: SandboxGateway
) -> None:
    url = start_app(cache_max_entries=3)
    asked = iter(range(100))

    async def ask_data(version: str) -> None:
        # A new alias each time: a new document, so the whole-response cache misses and the answer cache is used.
        query = f'{{ a{next(asked)}: miniAppVersion(appVersion: "{version}") {{ status }} }}'
        async with httpx.AsyncClient(base_url=url, timeout=20) as http:
            assert "errors" not in (await http.post("/graphql", json={"query": query})).json()

    for version in VERSIONS[:3]:
        await ask_data(version)
    await ask_data(VERSIONS[0])  # touch: now the least recently used is VERSIONS[1]
    await ask_data(VERSIONS[3])  # evicts VERSIONS[1]
    assert len(sandbox.calls) == 4
    await ask_data(VERSIONS[0])
    await ask_data(VERSIONS[2])
    await ask_data(VERSIONS[3])
    assert len(sandbox.calls) == 4  # all three still cached
    await ask_data(VERSIONS[1])
    assert len(sandbox.calls) == 5  # it had been evicted


def _redis_keys(server: RedisServer) -> list[str]:
    # KEYS answers an array: "*N", then "$len" and the key for each; read it raw.
    with socket.create_connection(("127.0.0.1", server.port), timeout=1) as conn:
        conn.sendall(b"KEYS *\r\n")
        lines = conn.recv(65536).split(b"\r\n")
    return [line.decode() for line in lines[2::2] if line]


async def test_two_instances_share_redis(
    start_app: Callable[..., str], sandbox: SandboxGateway, redis_server: RedisServer
) -> None:
    one, two = start_app(cache_url=redis_server.url), start_app(cache_url=redis_server.url)
    first = await ask(one, **{"X-Alipay-App-Auth-Token": MERCHANT_TOKEN})
    second = await ask(two, **{"X-Alipay-App-Auth-Token": MERCHANT_TOKEN})
    assert second["data"] == first["data"]
    assert "cacheAge" in second["extensions"]
    assert len(sandbox.calls) == 1
    keys = [k for k in _redis_keys(redis_server) if ":fleet:" not in k]  # the fleet's buckets are another test's
    [key] = [k for k in keys if k.startswith("alipay-miniapp-graph:v1:alipay.open.mini.version.detail.query:")]
    [response_key] = [k for k in keys if k.startswith("alipay-miniapp-graph:v1:response:")]
    assert len(keys) == 2  # the gateway answer and the whole response, both shared
    assert MERCHANT_TOKEN not in response_key
    assert MERCHANT_TOKEN not in key
    stored = redis_server.command("GET", key) or ""
    assert MERCHANT_TOKEN not in stored
    ttl = int((redis_server.command("TTL", key) or ":0").lstrip(":"))
    assert 60 < ttl <= 60 + 300  # GRAPH_CACHE_TTL_S + GRAPH_CACHE_STALE_S (kept for stale-if-error), kept by Redis


async def test_redis_down_and_back(
    start_app: Callable[..., str], sandbox: SandboxGateway, redis_server: RedisServer
) -> None:
    url = start_app(cache_url=redis_server.url)
    await ask(url, "0.0.1")
    redis_server.stop()
    # Down: every query still answers, from the gateway; readiness says why.
    for version in ("0.0.1", "0.0.2"):
        body = await ask(url, version)
        assert "errors" not in body
    assert len(sandbox.calls) == 3
    async with httpx.AsyncClient(base_url=url) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["cache"] == "redis unavailable"
        # The metrics say the same, by cache and backend: reads failed (and were answered as misses).
        metrics = (await http.get("/metrics")).text
        assert 'graph_cache_lookups_total{backend="redis",cache="gateway",result="error"} 2.0' in metrics
        assert 'graph_cache_errors_total{backend="redis",cache="gateway",operation="get"} 2.0' in metrics
        assert 'graph_cache_lookups_total{backend="redis",cache="response",result="error"} 2.0' in metrics
        redis_server.start()  # empty again: it kept nothing on disk
        for _ in range(100):
            if (await http.get("/readyz")).status_code == 200:
                break
            await asyncio.sleep(0.05)
        assert (await http.get("/readyz")).json()["checks"]["cache"] == "ok"
    await ask(url, "0.0.2")
    await ask(url, "0.0.2")
    assert len(sandbox.calls) == 4  # reconnected by itself: the second ask was a Redis hit


async def test_slow_redis_is_a_miss_not_a_failure(
    start_app: Callable[..., str], sandbox: SandboxGateway, redis_server: RedisServer
) -> None:
    url = start_app(cache_url=redis_server.url)
    await ask(url, "0.0.1")
    # DEBUG SLEEP blocks the whole server; our operations give up after ~100 ms and ask the gateway.
    sleeper = threading.Thread(target=redis_server.command, args=("DEBUG", "SLEEP", "1.5"))
    sleeper.start()
    await asyncio.sleep(0.1)
    started = time.monotonic()
    body = await ask(url, "0.0.1")
    elapsed = time.monotonic() - started
    sleeper.join()
    assert "errors" not in body
    assert len(sandbox.calls) == 2
    assert elapsed < 1.4  # it did not wait for Redis to wake up


async def test_one_operation_asks_the_gateway_concurrently(graph_url: str, sandbox: SandboxGateway) -> None:
    # Five clients behind a slow gateway: all five calls are in flight together (one round trip, not five).
    sandbox.latency_s = 0.2
    query = '{ miniAppVersions(appVersion: "0.0.1") { __typename } a: miniAppVersion(appVersion: "0.0.2") { status } }'
    async with httpx.AsyncClient(base_url=graph_url, timeout=20) as http:
        body = (await http.post("/graphql", json={"query": query})).json()
    assert "errors" not in body
    assert len(sandbox.calls) == 6
    assert sandbox.max_in_flight == 6


async def test_gateway_calls_in_flight_are_bounded(start_app: Callable[..., str], sandbox: SandboxGateway) -> None:
    url = start_app(max_concurrency=2)
    sandbox.latency_s = 0.1
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        body = (
            await http.post("/graphql", json={"query": '{ miniAppVersions(appVersion: "0.0.1") { __typename } }'})
        ).json()
    assert [item["__typename"] for item in body["data"]["miniAppVersions"]] == ["MiniAppVersion"] * 5
    assert len(sandbox.calls) == 5
    assert sandbox.max_in_flight == 2  # GRAPH_MAX_CONCURRENCY
