"""What a caller can make the service spend of the merchant's Alipay quota, and what it serves when Alipay is away.

``Cache-Control: no-cache`` refreshes a key at most once per GRAPH_CACHE_MIN_REFRESH_S; every gateway call
(retries included) spends from the merchant's ALIPAY_MAX_CALLS_PER_MIN; while the gateway cannot answer, an
expired answer serves up to GRAPH_CACHE_STALE_S, marked ``extensions.stale``. Counts come from the sandbox
gateway's call log: what Alipay would have seen.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from graph.sandbox import DemoCredentials, Fault, SandboxGateway
from tests.conftest import MERCHANT_TOKEN
from tests.secrets_audit import WireSigns
from tests.servers import serve

STATUS = "query($v: String!) { miniAppVersion(appVersion: $v) { appVersion status } }"
EVERY_CLIENT = (
    "query($v: String!) { miniAppVersions(appVersion: $v) { __typename ... on MiniAppVersionError { code message } } }"
)
NO_CACHE = {"Cache-Control": "no-cache"}


async def ask(url: str, version: str = "0.0.1", query: str = STATUS, **headers: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        response = await http.post("/graphql", json={"query": query, "variables": {"v": version}}, headers=headers)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def metric(url: str, name: str) -> float:
    async with httpx.AsyncClient(base_url=url) as http:
        text = (await http.get("/metrics")).text
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " ")]
    assert values, f"{name} is not exposed"
    return values[0]


async def test_no_cache_refreshes_a_key_at_most_once_per_interval(
    start_app: Callable[..., str], sandbox: SandboxGateway
) -> None:
    url = start_app(cache_min_refresh_s=3.0)
    await ask(url)
    # The attack from the issue: every request asks for a refresh. One key, 20 forced reads: no new call yet.
    answers = await asyncio.gather(*(ask(url, **NO_CACHE) for _ in range(20)))
    assert all(a["data"]["miniAppVersion"]["appVersion"] == "0.0.1" for a in answers)
    assert len(sandbox.calls) == 1
    assert await metric(url, 'graph_cache_forced_refresh_total{outcome="throttled"}') >= 1  # joined flights count once
    await asyncio.sleep(3.1)
    refreshed = await asyncio.gather(*(ask(url, **NO_CACHE) for _ in range(20)))
    assert len(sandbox.calls) == 2  # one refresh for the twenty, then the rest saw it
    assert min(a["extensions"]["cacheAge"] for a in refreshed) == 0
    assert await metric(url, 'graph_cache_forced_refresh_total{outcome="refreshed"}') == 1


async def test_the_default_refresh_bound_is_five_seconds(graph_url: str, sandbox: SandboxGateway) -> None:
    await ask(graph_url)
    await asyncio.sleep(1.1)
    throttled = await ask(graph_url, **NO_CACHE)
    assert throttled["extensions"]["cacheAge"] >= 1  # the cached answer, not a new call
    assert len(sandbox.calls) == 1


@contextlib.contextmanager
def own_sandbox(demo_credentials: DemoCredentials) -> Iterator[tuple[SandboxGateway, str]]:
    """A sandbox gateway this test can stop: Alipay going away."""
    gateway = SandboxGateway.for_credentials(demo_credentials, auth_tokens=[MERCHANT_TOKEN])
    with serve(WireSigns(gateway.app)) as url:
        yield gateway, f"{url}/gateway.do"


async def test_stale_answers_serve_while_the_gateway_is_stopped_and_never_past_the_bound(
    start_app: Callable[..., str], demo_credentials: DemoCredentials
) -> None:
    with own_sandbox(demo_credentials) as (gateway, gateway_url):
        url = start_app(gateway_url=gateway_url, cache_ttl_s=0.5, cache_stale_s=2.0, retries=0, timeout_s=1.0)
        fresh = await ask(url)
        assert "stale" not in fresh["extensions"]
        assert len(gateway.calls) == 1
    # The gateway is gone (connection refused). Within the TTL: a plain hit, not stale.
    assert "stale" not in (await ask(url))["extensions"]
    await asyncio.sleep(0.7)
    stale = await ask(url)
    assert stale["data"] == fresh["data"]
    assert stale["extensions"]["stale"] is True
    assert stale["extensions"]["cacheAge"] >= 0
    assert "errors" not in stale
    assert await metric(url, "graph_cache_stale_served_total") == 1
    # A stale answer is never kept as a whole response nor offered to HTTP caches.
    async with httpx.AsyncClient(base_url=url) as http:
        got = await http.get("/graphql", params={"query": STATUS, "variables": '{"v": "0.0.1"}'})
    assert got.json()["extensions"]["stale"] is True
    assert got.headers["cache-control"] == "no-store"
    # Past the bound (TTL 0.5 + stale 2.0): the error, as without a cache.
    await asyncio.sleep(2.0)
    gone = await ask(url)
    assert gone["data"]["miniAppVersion"] is None
    assert gone["errors"][0]["extensions"]["code"] == "ALIPAY_UNAVAILABLE"
    assert "stale" not in gone["extensions"]


async def test_business_errors_are_never_covered_by_a_stale_answer(
    start_app: Callable[..., str], sandbox: SandboxGateway
) -> None:
    url = start_app(cache_ttl_s=0.3, cache_stale_s=30.0, cache_error_ttl_s=0)
    await ask(url)
    await asyncio.sleep(0.4)
    sandbox.fail_next(Fault.business_error("APPLICATION_TYPE_NOT_MINIAPP"), times=1)
    refused = await ask(url)
    assert refused["errors"][0]["extensions"]["code"] == "ALIPAY_BUSINESS_ERROR"  # Alipay's answer, not the old one
    assert "stale" not in refused["extensions"]


async def test_a_failed_forced_refresh_serves_the_fresh_cached_answer(
    start_app: Callable[..., str], sandbox: SandboxGateway
) -> None:
    url = start_app(cache_min_refresh_s=0, retries=0)
    first = await ask(url)
    sandbox.fail_next(Fault.HTTP_502, times=1)
    kept = await ask(url, **NO_CACHE)
    assert kept["data"] == first["data"]
    assert "stale" not in kept["extensions"]  # still within its TTL: a good answer, not a stale one
    assert len(sandbox.calls) == 2


async def test_a_spent_budget_serves_what_is_cached_and_fails_misses_at_once(
    start_app: Callable[..., str], sandbox: SandboxGateway
) -> None:
    url = start_app(max_calls_per_min=3)
    first = await ask(url, "0.0.1", EVERY_CLIENT)  # five clients: five calls wanted, three allowed
    items = first["data"]["miniAppVersions"]
    assert [item["__typename"] for item in items].count("MiniAppVersion") == 3
    refused = [item for item in items if item["__typename"] == "MiniAppVersionError"]
    assert len(refused) == 2
    assert {item["code"] for item in refused} == {"ALIPAY_UNAVAILABLE"}
    assert all("budget" in item["message"] and "ALIPAY_MAX_CALLS_PER_MIN" in item["message"] for item in refused)
    assert len(sandbox.calls) == 3
    again = await ask(url, "0.0.1", EVERY_CLIENT)
    assert [item["__typename"] for item in again["data"]["miniAppVersions"]].count("MiniAppVersion") == 3
    assert len(sandbox.calls) == 3  # the cached three served, the other two refused without a call
    single = await ask(url, "0.0.2")
    assert single["errors"][0]["extensions"]["code"] == "ALIPAY_UNAVAILABLE"
    assert await metric(url, "graph_upstream_budget_refused_total") == 5
    # Another merchant's budget is its own.
    assert "errors" not in await ask(url, "0.0.2", **{"X-Alipay-App-Auth-Token": MERCHANT_TOKEN})


async def test_retries_spend_the_budget_too(start_app: Callable[..., str], sandbox: SandboxGateway) -> None:
    url = start_app(max_calls_per_min=2, retries=3)
    sandbox.fail_next(Fault.BUSY, times=5)
    body = await ask(url)
    assert "budget" in body["errors"][0]["message"]
    assert len(sandbox.calls) == 2  # two attempts allowed; the third was refused before it was sent


@pytest.mark.parametrize("value", ["-1", "x", "1e99"])
def test_budget_settings_are_validated(value: str) -> None:
    from graph.config import ConfigError, Settings

    for name in ("ALIPAY_MAX_CALLS_PER_MIN", "GRAPH_CACHE_MIN_REFRESH_S", "GRAPH_CACHE_STALE_S"):
        with pytest.raises(ConfigError, match=name):
            Settings.from_environ({name: value}, demo=True)
