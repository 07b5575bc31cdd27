"""Single-flight across a fleet: three real service processes on one real Redis make one gateway call per cold key.

Counts come from the sandbox gateway's call log (what Alipay would have seen); each instance is its own
``python -m graph serve`` process with its own event loop, in-process single-flight and connection pools.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from graph.sandbox import DemoCredentials, Fault, SandboxGateway
from tests.processes import Service, gateway_env
from tests.redis_server import RedisServer

STATUS = "query($v: String!, $b: String!) { miniAppVersion(appVersion: $v, bundleId: $b) { appVersion status } }"
VERSIONS = ["0.0.1", "0.0.2", "0.1.0", "1.0.0"]
CLIENTS = ["com.alipay.alipaywallet", "com.alibaba.android.rimet", "com.amap.app"]


async def ask(http: httpx.AsyncClient, url: str, version: str, client: str, **headers: str) -> dict[str, Any]:
    response = await http.post(
        f"{url}/graphql", json={"query": STATUS, "variables": {"v": version, "b": client}}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def fleet(
    service: Callable[..., Service], demo_credentials: DemoCredentials, gateway_url: str, redis: RedisServer, **env: str
) -> list[Service]:
    instances = [
        service({**gateway_env(demo_credentials, gateway_url), "GRAPH_CACHE_URL": redis.url, **env}) for _ in range(3)
    ]
    await asyncio.gather(*(one.ready() for one in instances))
    return instances


async def test_three_instances_make_one_call_per_cold_key(
    service: Callable[..., Service],
    demo_credentials: DemoCredentials,
    sandbox: SandboxGateway,
    gateway_url: str,
    redis_server: RedisServer,
) -> None:
    instances = await fleet(service, demo_credentials, gateway_url, redis_server)
    keys = [(v, c) for v in VERSIONS for c in CLIENTS]  # twelve distinct gateway calls
    sandbox.fail_next(Fault.slow(0.4), times=len(keys) * 3)  # slow enough that every instance asks while one calls
    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        # Each key asked twice by each of the 3 instances, all at once: 72 requests, 12 keys.
        answers = await asyncio.gather(
            *(ask(http, one.url, v, c) for v, c in keys for one in instances for _ in range(2))
        )
    assert all("errors" not in a for a in answers)
    assert len(sandbox.calls) == len(keys)
    assert {(c.app_version, c.bundle_id) for c in sandbox.calls} == set(keys)
    async with httpx.AsyncClient() as http:
        waited = 0.0
        for one in instances:
            for line in (await http.get(f"{one.url}/metrics")).text.splitlines():
                if line.startswith("graph_singleflight_fleet_waited_total "):
                    waited += float(line.split()[1])
    assert waited >= len(keys)  # at least one instance per key took another's answer instead of calling


async def test_a_failed_call_lets_the_waiters_call_for_themselves(
    service: Callable[..., Service],
    demo_credentials: DemoCredentials,
    sandbox: SandboxGateway,
    gateway_url: str,
    redis_server: RedisServer,
) -> None:
    instances = await fleet(
        service, demo_credentials, gateway_url, redis_server, ALIPAY_RETRIES="0", ALIPAY_TIMEOUT_S="0.3"
    )
    # The first call times out (failures are not cached): the others find no answer and call themselves.
    sandbox.fail_next(Fault.slow(1.0), times=1)
    async with httpx.AsyncClient(timeout=30) as http:
        answers = await asyncio.gather(*(ask(http, one.url, "0.0.1", CLIENTS[0]) for one in instances))
    # Only the holder's own request fails; the others, waiting on its lease, got an answer when it went (by calling
    # themselves, or from one of them that did: the timed-out call may not even reach the sandbox's log).
    assert sum("errors" in a for a in answers) <= 1
    assert sum(a["data"]["miniAppVersion"] is not None for a in answers) >= 2
    assert 1 <= len(sandbox.calls) <= 3


async def test_with_redis_gone_each_instance_calls_alone_and_says_so_once(
    service: Callable[..., Service],
    demo_credentials: DemoCredentials,
    sandbox: SandboxGateway,
    gateway_url: str,
    redis_server: RedisServer,
) -> None:
    instances = await fleet(service, demo_credentials, gateway_url, redis_server)
    redis_server.stop()
    async with httpx.AsyncClient(timeout=30) as http:
        for version in VERSIONS[:3]:
            answers = await asyncio.gather(*(ask(http, one.url, version, CLIENTS[0]) for one in instances))
            assert all("errors" not in a for a in answers)
    # No cache, no lease: every instance on its own (9 calls; a retry of a slow answer on a loaded machine may add).
    assert len(sandbox.calls) >= 9
    for one in instances:
        one.stop()
        log = one.log.read_text()
        assert log.count("single-flight joins are this instance's own") == 1, log[-2000:]


async def test_the_lease_in_process_lead_wait_release(redis_server: RedisServer) -> None:
    # The lease's own rules on a real redis-server, two instances' FleetFlights in one process.
    from redis.asyncio import Redis

    from graph.fleet.flight import FleetFlight

    one, two = Redis.from_url(redis_server.url), Redis.from_url(redis_server.url)
    first, second = FleetFlight(one, lease_s=0.5), FleetFlight(two, lease_s=0.5)
    answer: list[str] = []

    async def ready() -> str | None:
        return answer[0] if answer else None

    lease = await first.lead("k")
    assert lease is not None
    assert await second.lead("k") is None  # held: the second waits instead of calling
    waiting = asyncio.ensure_future(second.wait("k", ready))
    await asyncio.sleep(0.05)
    answer.append("from the holder")
    assert await waiting == "from the holder"
    assert second.waited == 1
    await lease.release()
    # The holder's call failed (nothing stored): the lease goes, the waiter stops waiting and calls itself.
    answer.clear()
    lease = await first.lead("k")
    assert lease is not None
    waiting = asyncio.ensure_future(second.wait("k", ready))
    await asyncio.sleep(0.05)
    await lease.release()
    assert await waiting is None
    # A holder slower than its lease: the lease ran out (another may hold it now); releasing it is harmless.
    lease = await first.lead("slow")
    assert lease is not None
    await asyncio.sleep(0.6)
    assert await second.lead("slow") is not None
    await lease.release()
    # Redis gone: each acts alone (a lease never taken, released as a no-op), waiting gives up at once.
    redis_server.stop()
    alone = await first.lead("k2")
    assert alone is not None
    await alone.release()
    assert first.acted_alone == 1
    assert await second.wait("k2", ready) is None
    for client in (one, two):
        await client.aclose()
