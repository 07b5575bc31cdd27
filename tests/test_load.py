"""A bounded load run on loopback with faults injected: every request gets its own correct data or a correct error.

The gateway here serves three tenants (two merchant tokens and no token) with data that names its tenant, version
and client in ``memo``, so an answer that went to the wrong request, or a merchant's answer served to another,
cannot pass for a right one.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any

import httpx
import pytest

from graph.app import create_app
from graph.config import Settings
from graph.gateway.client import Credentials
from graph.gateway.transport import GatewayTransport
from graph.sandbox import SEED_VERSIONS, DemoCredentials, Fault, SandboxGateway
from tests.conftest import MERCHANT_TOKEN, OTHER_MERCHANT_TOKEN
from tests.secrets_audit import WireSigns
from tests.servers import serve

QUERY = """
query($v: String!, $b: String!) { miniAppVersion(appVersion: $v, bundleId: $b) { appVersion bundleId memo status } }
"""
TENANTS: dict[str | None, str] = {MERCHANT_TOKEN: "A", OTHER_MERCHANT_TOKEN: "B", None: "-"}
VERSIONS = [*sorted({version for version, _ in SEED_VERSIONS}), "9.9.9"]  # the last one exists nowhere
BUNDLES = sorted({bundle for _, bundle in SEED_VERSIONS})
FAULTS = [Fault.BUSY, Fault.HTTP_502, Fault.BAD_SIGNATURE, Fault.GARBAGE_BODY, Fault.TRUNCATED_JSON, Fault.slow(0.05)]
REQUESTS, CONCURRENCY = 2000, 32


def marker(tenant: str, version: str, bundle: str) -> str:
    return f"{tenant}/{version}/{bundle}"


def tenant_versions(tenant: str) -> dict[tuple[str, str], Mapping[str, Any]]:
    return {(v, b): {**record, "memo": marker(tenant, v, b)} for (v, b), record in SEED_VERSIONS.items()}


@pytest.fixture
def tenant_graph(
    demo_credentials: DemoCredentials, credentials: Credentials
) -> Iterator[tuple[Callable[..., str], SandboxGateway]]:
    """A gateway serving three tenants, and a way to start the service in front of it with settings changed."""
    gateway = SandboxGateway(
        alipay_private_key=demo_credentials.alipay_private_key,
        apps={demo_credentials.app_id: demo_credentials.app_public_key},
        versions=tenant_versions("-"),
        tenants={MERCHANT_TOKEN: tenant_versions("A"), OTHER_MERCHANT_TOKEN: tenant_versions("B")},
    )
    with contextlib.ExitStack() as stack:
        gateway_url = stack.enter_context(serve(WireSigns(gateway.app)))
        settings = Settings(
            credentials=credentials,
            gateway_url=f"{gateway_url}/gateway.do",
            allow_anonymous=True,
            rate_limit_per_min=0,
            timeout_s=2.0,
        )

        def start(**changes: Any) -> str:
            return stack.enter_context(serve(create_app(replace(settings, **changes)), lifespan="on"))

        yield start, gateway


def check(token: str | None, version: str, bundle: str, response: httpx.Response) -> str:
    """What the answer was ("data" or an error code), after checking it is right for exactly this request."""
    assert response.status_code == 200
    body = response.json()
    errors = body.get("errors")
    if errors is None:
        answer = body["data"]["miniAppVersion"]
        assert answer["appVersion"] == version
        assert answer["bundleId"] == bundle
        assert answer["memo"] == marker(TENANTS[token], version, bundle)
        assert answer["status"] == SEED_VERSIONS[version, bundle]["status"]
        return "data"
    assert body["data"] == {"miniAppVersion": None}
    [error] = errors
    code: str = error["extensions"]["code"]
    if version in VERSIONS[:-1]:
        assert code in {"ALIPAY_UNAVAILABLE", "ALIPAY_BAD_SIGNATURE"}  # only what the injected faults cause
    else:
        assert code in {"ALIPAY_UNAVAILABLE", "ALIPAY_BAD_SIGNATURE", "ALIPAY_BUSINESS_ERROR"}
        if code == "ALIPAY_BUSINESS_ERROR":
            assert error["extensions"]["alipay"]["subCode"] == "VERSION_NOT_EXIST"
    return code


async def test_load_run_with_faults_loses_nothing(tenant_graph: tuple[Callable[..., str], SandboxGateway]) -> None:
    start, gateway = tenant_graph
    # Short cache lifetimes: the run keeps going back to the gateway, where the faults are.
    url = start(cache_ttl_s=0.5, cache_error_ttl_s=0.5)
    rng = random.Random(5)  # noqa: S311  (a reproducible mix, not a secret)
    plan = [
        (rng.choice(list(TENANTS)), rng.choice(VERSIONS), rng.choice(BUNDLES), rng.random() < 0.5)
        for _ in range(REQUESTS)
    ]
    outcomes: Counter[str] = Counter()
    gate = asyncio.Semaphore(CONCURRENCY)
    stop = asyncio.Event()

    async def inject() -> None:
        # About one gateway call in four meets a fault (queued faults wait for the next call, whichever it is).
        seen = 0
        while not stop.is_set():
            if gateway.received >= seen + 4:
                seen = gateway.received
                gateway.fail_next(rng.choice(FAULTS))
            await asyncio.sleep(0.005)

    async def one(http: httpx.AsyncClient, token: str | None, version: str, bundle: str, fresh: bool) -> None:
        headers = {"Cache-Control": "no-cache"} if fresh else {}
        if token:
            headers["X-Alipay-App-Auth-Token"] = token
        async with gate:
            response = await http.post(
                "/graphql", json={"query": QUERY, "variables": {"v": version, "b": bundle}}, headers=headers
            )
        outcomes[check(token, version, bundle, response)] += 1

    # Idle connections expire on the client first: uvicorn drops one idle for 5 s, and httpx's default expiry
    # is also 5 s, so a request can be written to a connection the server is closing (a keep-alive race any
    # client of any server can meet, not an answer the service lost).
    limits = httpx.Limits(max_connections=CONCURRENCY, keepalive_expiry=1.0)
    # aiohttp's pool under httpx's API (what the service itself uses upstream): a third of httpcore's CPU per
    # request, and this process is also serving the 2,000 requests and the gateway behind them.
    transport = GatewayTransport(limits=limits)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits, transport=transport) as http:
        injector = asyncio.create_task(inject())
        try:
            await asyncio.gather(*(one(http, *request) for request in plan))
        finally:
            stop.set()
            await injector
    assert sum(outcomes.values()) == REQUESTS  # none lost
    assert outcomes["data"] > REQUESTS // 2
    assert outcomes["ALIPAY_UNAVAILABLE"] > 0  # the faults did bite
    assert outcomes["ALIPAY_BAD_SIGNATURE"] > 0
    assert gateway.received > 200
    print(f"load run: {REQUESTS} requests, concurrency {CONCURRENCY}, outcomes {dict(outcomes)}")  # noqa: T201


async def test_concurrent_answers_never_mix(tenant_graph: tuple[Callable[..., str], SandboxGateway]) -> None:
    # Every distinct (tenant, version, client) at once, three times over, behind a slow gateway: 225 requests in
    # flight together, sharing batches, single flights and the cache, each checked against its own key.
    start, gateway = tenant_graph
    url = start()
    gateway.latency_s = 0.1
    keys = [(t, v, b) for t in TENANTS for v in VERSIONS[:-1] for b in BUNDLES]
    requests = keys * 3
    random.Random(7).shuffle(requests)  # noqa: S311
    limits = httpx.Limits(max_connections=len(requests), keepalive_expiry=1.0)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:

        async def one(token: str | None, version: str, bundle: str) -> str:
            headers = {"X-Alipay-App-Auth-Token": token} if token else {}
            response = await http.post(
                "/graphql", json={"query": QUERY, "variables": {"v": version, "b": bundle}}, headers=headers
            )
            return check(token, version, bundle, response)

        outcomes = await asyncio.gather(*(one(*request) for request in requests))
    assert outcomes == ["data"] * len(requests)
    assert gateway.max_in_flight > 10
    assert gateway.received == len(keys)  # one gateway call a key: the rest shared it


APP_QUERY = """
query($b: String!, $n: Int!) {
  miniApp { appName versions(bundleId: $b, first: $n) { appVersion status detail { memo } experience { status } } }
}
"""
NEWEST = ["1.1.0-beta", "1.0.0", "0.1.0", "0.0.2", "0.0.1"]
TRIAL = {"INIT": "PACKAGED", "AUDITING": "PACKAGING"}  # the sandbox's trial builds; the rest: NOT_EXPERIENCE


def check_app(token: str | None, bundle: str, first: int, response: httpx.Response) -> str:
    """The mini-app answer checked item by item against this request's tenant and client; a failed field
    (base info, the list, one detail or experience) is null with its own error, the rest stands."""
    assert response.status_code == 200
    body = response.json()
    app = body["data"]["miniApp"]
    failed = {tuple(error["path"]): error["extensions"]["code"] for error in body.get("errors", [])}
    assert set(failed.values()) <= {"ALIPAY_UNAVAILABLE", "ALIPAY_BAD_SIGNATURE"}
    assert (app["appName"] is None) == (("miniApp", "appName") in failed)
    assert app["appName"] in (None, "小程序demo")
    if app["versions"] is None:
        assert ("miniApp", "versions") in failed
        return "partial"
    assert [item["appVersion"] for item in app["versions"]] == NEWEST[:first]
    for index, item in enumerate(app["versions"]):
        version = item["appVersion"]
        status = SEED_VERSIONS[version, bundle]["status"]
        assert item["status"] == status
        detail, experience = item["detail"], item["experience"]
        assert (detail is None) == (("miniApp", "versions", index, "detail") in failed)
        assert detail is None or detail["memo"] == marker(TENANTS[token], version, bundle)
        assert (experience is None) == (("miniApp", "versions", index, "experience") in failed)
        assert experience is None or experience["status"] == TRIAL.get(status, "NOT_EXPERIENCE")
    return "partial" if failed else "data"


async def test_load_run_over_the_mini_app_loses_nothing(
    tenant_graph: tuple[Callable[..., str], SandboxGateway],
) -> None:
    start, gateway = tenant_graph
    url = start(cache_ttl_s=0.5, cache_error_ttl_s=0.5)
    rng = random.Random(11)  # noqa: S311  (a reproducible mix, not a secret)
    plan = [(rng.choice(list(TENANTS)), rng.choice(BUNDLES), rng.randint(0, 5)) for _ in range(REQUESTS // 4)]
    outcomes: Counter[str] = Counter()
    gate = asyncio.Semaphore(CONCURRENCY)
    stop = asyncio.Event()

    async def inject() -> None:
        seen = 0
        while not stop.is_set():
            if gateway.received >= seen + 6:
                seen = gateway.received
                gateway.fail_next(rng.choice(FAULTS))
            await asyncio.sleep(0.005)

    async def one(http: httpx.AsyncClient, token: str | None, bundle: str, first: int) -> None:
        headers = {"X-Alipay-App-Auth-Token": token} if token else {}
        async with gate:
            response = await http.post(
                "/graphql", json={"query": APP_QUERY, "variables": {"b": bundle, "n": first}}, headers=headers
            )
        outcomes[check_app(token, bundle, first, response)] += 1

    limits = httpx.Limits(max_connections=CONCURRENCY, keepalive_expiry=1.0)
    async with httpx.AsyncClient(
        base_url=url, timeout=30, limits=limits, transport=GatewayTransport(limits=limits)
    ) as http:
        injector = asyncio.create_task(inject())
        try:
            await asyncio.gather(*(one(http, *request) for request in plan))
        finally:
            stop.set()
            await injector
    assert sum(outcomes.values()) == len(plan)
    assert outcomes["data"] > len(plan) // 2
    assert outcomes["partial"] > 0  # the faults did bite, each in its own field
    assert {call.api for call in gateway.calls} >= {
        "alipay.open.mini.version.list.query",
        "alipay.open.mini.experience.query",
    }
    print(f"mini-app load run: {len(plan)} requests, outcomes {dict(outcomes)}")  # noqa: T201
