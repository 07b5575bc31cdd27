"""Live subscriptions across a fleet: real ``python -m graph serve`` processes on one real Redis, subscribers over
real WebSockets, a sandbox whose versions the test changes. One gateway call per interval for a key, whatever the
number of subscribers and instances; the poll moves on when its instance is killed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import orjson
import pytest
import redis

from graph.app import create_app
from graph.config import Settings
from graph.data.source import VersionKey, cache_key
from graph.fleet.redis import PREFIX
from graph.gateway.client import Credentials
from graph.live.fleet import CHANNEL
from graph.sandbox import DemoCredentials, SandboxGateway
from tests.live_client import VERSIONS, WALLET, WsClient, change
from tests.processes import Service, gateway_env
from tests.redis_server import RedisServer
from tests.servers import serve

POLL_S = 1.0
INSTANCES = 3
SUBSCRIBERS = 200
LEASES = f"{PREFIX}live:lease:*"


@pytest.fixture
def fleet(
    service: Callable[..., Service], demo_credentials: DemoCredentials, live_gateway_url: str, redis_server: RedisServer
) -> list[Service]:
    env = {
        **gateway_env(demo_credentials, live_gateway_url),
        "GRAPH_CACHE_URL": redis_server.url,
        "GRAPH_LIVE_POLL_S": str(POLL_S),
        "GRAPH_LIVE_MAX_PER_KEY": "1000",
        "GRAPH_LIVE_MAX_CONNECTIONS_PER_KEY": "1000",
    }
    return [service(env) for _ in range(INSTANCES)]  # stopped by SIGTERM after the test: coverage data written


def detail_calls(sandbox: SandboxGateway) -> int:
    return sum(1 for call in sandbox.calls if call.method == "alipay.open.mini.version.detail.query")


def lease_holders(server: RedisServer) -> list[str]:
    client = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        return [str(client.get(key)) for key in client.scan_iter(LEASES)]
    finally:
        client.close()


async def test_one_gateway_call_per_interval_for_the_whole_fleet_and_the_poll_moves_when_its_instance_dies(
    fleet: list[Service], live_sandbox: SandboxGateway, redis_server: RedisServer
) -> None:
    await asyncio.gather(*(served.ready() for served in fleet))
    clients: list[tuple[Service, WsClient]] = []
    for number in range(SUBSCRIBERS):
        served = fleet[number % INSTANCES]
        client = await (await WsClient.open(served.url)).acked()
        await client.subscribe("w", {"appVersion": "0.0.1", "bundleIds": [WALLET]})
        clients.append((served, client))
    initial = await asyncio.gather(*(client.item() for _, client in clients))
    assert {item["status"] for item in initial} == {"RELEASE"}

    # One instance holds the key's lease and polls it; the others hear its states.
    live_sandbox.calls.clear()
    intervals = 6
    await asyncio.sleep(intervals * POLL_S)
    calls = detail_calls(live_sandbox)
    print(f"\nfleet: {SUBSCRIBERS} subscribers, {INSTANCES} instances, {calls} gateway calls in {intervals} intervals")  # noqa: T201
    assert intervals - 1 <= calls <= intervals + 1
    holders = lease_holders(redis_server)
    assert len(holders) == 1

    # A change reaches every subscriber within one interval.
    change(VERSIONS, ("0.0.1", WALLET), status="GRAY", gray_strategy="p20")
    changed = time.monotonic()
    events = await asyncio.gather(*(client.item(within=POLL_S + 5.0) for _, client in clients))
    last = time.monotonic() - changed
    print(f"fleet: change to the last of {SUBSCRIBERS} subscribers' events: {last:.2f} s (poll {POLL_S} s)")  # noqa: T201
    assert {event["status"] for event in events} == {"GRAY"}
    assert last < POLL_S + 2.0

    # Kill (SIGKILL: no goodbye, the lease is not given back) the instance that polls.
    pid = int(holders[0].split(":")[1])
    (victim,) = [served for served in fleet if served.process.pid == pid]
    victim.process.kill()  # died, as a machine does: no lease given back
    victim.process.wait()
    killed = time.monotonic()
    survivors = [client for served, client in clients if served is not victim]
    while lease_holders(redis_server) in ([], holders):
        assert time.monotonic() - killed < 15, "the lease did not move within 15 s"
        await asyncio.sleep(0.2)
    moved = time.monotonic() - killed
    new_pid = int(lease_holders(redis_server)[0].split(":")[1])
    assert new_pid != pid
    print(f"fleet: the poll moved to another instance {moved:.1f} s after its instance was killed")  # noqa: T201

    change(VERSIONS, ("0.0.1", WALLET), status="RELEASE", gray_strategy=None)
    events = await asyncio.gather(*(client.item(within=POLL_S + 5.0) for client in survivors))
    assert {event["status"] for event in events} == {"RELEASE"}
    for _, client in clients:
        await client.aclose()


async def test_instances_in_one_process_share_the_poll_and_poll_alone_while_redis_is_down(
    credentials: Credentials, live_gateway_url: str, live_sandbox: SandboxGateway, redis_server: RedisServer
) -> None:
    settings = Settings(
        credentials=credentials,
        gateway_url=live_gateway_url,
        allow_anonymous=True,
        cache_url=redis_server.url,
        live_poll_s=0.3,
        retries=0,
        rate_limit_per_min=0,
    )
    with serve(create_app(settings), lifespan="on") as first, serve(create_app(settings), lifespan="on") as second:
        clients = [await (await WsClient.open(url)).acked() for url in (first, second)]
        for client in clients:
            await client.subscribe("w", {"appVersion": "0.1.0", "bundleIds": [WALLET]})
            assert (await client.item())["status"] == "AUDITING"
        # A key only the first instance watches: the second hears its states and passes them over.
        await clients[0].subscribe("other", {"appVersion": "0.0.2", "bundleIds": [WALLET]})
        assert (await clients[0].item())["bundleId"] == WALLET
        for _ in range(50):  # the first tick takes the leases
            if len(lease_holders(redis_server)) == 2:
                break
            await asyncio.sleep(0.05)
        assert len(lease_holders(redis_server)) == 2
        publisher = redis.Redis.from_url(redis_server.url)
        # A well-formed state for the watched key, but not sealed with the fleet's key: what anyone able to publish
        # on this Redis could send. Dropped like the garbage (and counted); were it taken, the next item would say
        # RELEASE instead of the real change below.
        ck = cache_key(credentials.app_id, VersionKey(None, "0.1.0", WALLET))
        node = {"code": "10000", "msg": "Success", "app_version": "0.1.0", "status": "RELEASE"}
        forged = orjson.dumps({"k": ck, "v": {"node": node}, "s": False, "t": time.time()})
        for garbage in (b"not json", b'{"k": 1}', b"[]", forged):  # dropped, with a warning; the listeners carry on
            publisher.publish(CHANNEL, garbage)
        publisher.close()
        change(VERSIONS, ("0.1.0", WALLET), status="GRAY")
        assert [(await client.item(within=5))["status"] for client in clients] == ["GRAY", "GRAY"]

        redis_server.stop()  # no lease to take, no channel: each instance polls for its own subscribers
        change(VERSIONS, ("0.1.0", WALLET), status="OFFLINE")
        assert [(await client.item(within=5))["status"] for client in clients] == ["OFFLINE", "OFFLINE"]
        redis_server.start()
        await asyncio.sleep(1.5)  # the listeners are back on the channel
        change(VERSIONS, ("0.1.0", WALLET), status="RELEASE")
        assert [(await client.item(within=5))["status"] for client in clients] == ["RELEASE", "RELEASE"]
        for client in clients:
            await client.aclose()
        await asyncio.sleep(0.5)
    assert lease_holders(redis_server) == []  # the watches ended: their lease was given back
