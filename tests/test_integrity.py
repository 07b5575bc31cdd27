"""What instances share through Redis is authenticated (graph.fleet.seal): real instances, a real redis-server, the
sandbox gateway's call log as the witness. Forgeries are written with raw commands, as anyone able to reach the
Redis could write them."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from graph.data.cache import Entry
from graph.data.responses import RESPONSES, CachedResponse
from graph.data.source import VersionKey, cache_key
from graph.fleet.seal import Seal, derive_key
from graph.gateway.client import Credentials
from graph.sandbox import DEFAULT_BUNDLE_ID, SandboxGateway
from tests.redis_server import RedisServer, value_of
from tests.secrets_audit import SECRETS

NAMESPACE = "alipay-miniapp-graph:v1:"
SIGNING_KEY = "integrity-test-signing-key-5f0c2a9e41d7b3"
OTHER_SIGNING_KEY = "integrity-test-signing-key-other-8e1b6d2f"
SECRETS.add(SIGNING_KEY, OTHER_SIGNING_KEY)  # every test's log is searched for them
VERSION = "query($v: String!) { miniAppVersion(appVersion: $v) { appVersion status canRelease grayPercentage } }"
# What the sandbox holds for 1.0.0 on Alipay: rejected by review, not releasable, no grey release.
REJECTED = {"appVersion": "1.0.0", "status": "AUDIT_REJECT", "canRelease": False, "grayPercentage": None}
# What a forger would like dashboards to show instead.
FORGED_NODE = {"app_version": "1.0.0", "status": "RELEASE", "can_release": "true", "gray_strategy": "p100"}


@pytest.fixture(autouse=True)
def _derived_key_is_a_secret(credentials: Credentials) -> None:
    derived = derive_key(credentials.private_key)
    SECRETS.add(derived.hex(), derived.hex().upper())
    SECRETS.add(base64.b64encode(derived).decode(), base64.urlsafe_b64encode(derived).decode())


async def ask(url: str, version: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        response = await http.post("/graphql", json={"query": VERSION, "variables": {"v": version}})
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def forged_lookups(url: str, cache: str) -> str:
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        text = (await http.get("/metrics")).text
    prefix = f'graph_cache_lookups_total{{backend="redis",cache="{cache}",result="forged"}} '
    return next(line for line in text.splitlines() if line.startswith(prefix)).removeprefix(prefix)


def gateway_key(app_id: str, version: str) -> str:
    """The Redis key of a detail answer asked without a merchant token, on Alipay."""
    return cache_key(app_id, VersionKey(None, version, DEFAULT_BUNDLE_ID))


def response_keys(redis: RedisServer) -> list[str]:
    reply = redis.call("KEYS", NAMESPACE + "response:*").decode()
    return [line for line in reply.split("\r\n") if line.startswith(NAMESPACE)]


async def test_a_forged_gateway_answer_is_refused_and_the_gateway_asked(
    start_app: Callable[..., str],
    sandbox: SandboxGateway,
    redis_server: RedisServer,
    credentials: Credentials,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = start_app(cache_url=redis_server.url)
    rejected, released = gateway_key(credentials.app_id, "1.0.0"), gateway_key(credentials.app_id, "0.0.1")
    # Unsealed, as the previous version wrote entries and as anyone without the key can; and sealed with a guess.
    unsealed = Entry("ok", FORGED_NODE, time.time()).dumps()
    guessed = Seal(OTHER_SIGNING_KEY.encode()).seal(f"gateway:{released}", unsealed)
    assert redis_server.call("SET", NAMESPACE + rejected, unsealed, "EX", "60") == b"+OK\r\n"
    redis_server.call("SET", NAMESPACE + released, guessed, "EX", "60")
    with caplog.at_level(logging.WARNING, logger="graph.fleet.seal"):
        first = await ask(url, "1.0.0")
        second = await ask(url, "0.0.1")
    assert first["data"]["miniAppVersion"] == REJECTED  # the real data, from the sandbox gateway
    assert first["extensions"]["cacheAge"] == 0
    assert second["data"]["miniAppVersion"]["status"] == "RELEASE"
    assert second["data"]["miniAppVersion"]["grayPercentage"] == 10
    assert [call.app_version for call in sandbox.calls] == ["1.0.0", "0.0.1"]
    warnings = [record for record in caplog.records if record.name == "graph.fleet.seal"]
    assert [(w.levelno, w.store, w.count) for w in warnings] == [(logging.WARNING, "gateway", 1)]  # type: ignore[attr-defined]
    assert await forged_lookups(url, "gateway") == "2.0"  # both counted, one warning a minute
    # The real answers replaced the forgeries under the same keys, sealed.
    stored = value_of(redis_server.call("GET", NAMESPACE + rejected)) or b""
    assert stored.startswith(b"g1.")
    assert b"AUDIT_REJECT" in stored
    assert (await ask(url, "1.0.0"))["data"]["miniAppVersion"] == REJECTED
    assert len(sandbox.calls) == 2


async def test_a_sealed_value_moved_to_another_key_or_store_is_refused(
    start_app: Callable[..., str], sandbox: SandboxGateway, redis_server: RedisServer, credentials: Credentials
) -> None:
    url = start_app(cache_url=redis_server.url)
    released = (await ask(url, "0.0.1"))["data"]["miniAppVersion"]
    [response] = response_keys(redis_server)
    source = NAMESPACE + gateway_key(credentials.app_id, "0.0.1")
    # 0.0.1's genuine, sealed answer copied over 1.0.0's key; its whole response over 0.1.0's gateway key.
    assert redis_server.command("COPY", source, NAMESPACE + gateway_key(credentials.app_id, "1.0.0")) == ":1"
    assert redis_server.command("COPY", response, NAMESPACE + gateway_key(credentials.app_id, "0.1.0")) == ":1"
    assert (await ask(url, "1.0.0"))["data"]["miniAppVersion"] == REJECTED
    assert (await ask(url, "0.1.0"))["data"]["miniAppVersion"]["status"] == "AUDITING"
    assert [call.app_version for call in sandbox.calls] == ["0.0.1", "1.0.0", "0.1.0"]
    assert await forged_lookups(url, "gateway") == "2.0"
    assert (await ask(url, "0.0.1"))["data"]["miniAppVersion"] == released  # where it belongs, it opens
    assert len(sandbox.calls) == 3


async def test_a_forged_whole_response_is_refused(
    start_app: Callable[..., str], sandbox: SandboxGateway, redis_server: RedisServer
) -> None:
    url = start_app(cache_url=redis_server.url)
    real = await ask(url, "1.0.0")
    [key] = response_keys(redis_server)
    now = time.time()
    body = (
        b'{"data":{"miniAppVersion":{"appVersion":"1.0.0","status":"RELEASE","canRelease":true,"grayPercentage":100}}}'
    )
    forged = RESPONSES.dumps(CachedResponse(body, True, now, now + 60, "anonymous", "ok", ()))
    redis_server.call("SET", key, forged, "EX", "60")
    again = await ask(url, "1.0.0")
    assert again["data"] == real["data"]
    assert len(sandbox.calls) == 1  # the response was refused, the (genuine) gateway answer served it
    assert await forged_lookups(url, "response") == "1.0"
    assert await forged_lookups(url, "gateway") == "0.0"


async def test_instances_of_one_app_key_agree_and_other_keys_do_not(
    start_app: Callable[..., str], sandbox: SandboxGateway, redis_server: RedisServer
) -> None:
    one, two = start_app(cache_url=redis_server.url), start_app(cache_url=redis_server.url)
    await ask(one, "0.0.1")
    shared = await ask(two, "0.0.1")  # no setting: both derived the key from the same app private key
    assert "cacheAge" in shared["extensions"]
    assert len(sandbox.calls) == 1
    assert await forged_lookups(two, "response") == "0.0"

    keyed = start_app(cache_url=redis_server.url, cache_signing_key=SIGNING_KEY.encode())
    await ask(keyed, "0.0.1")  # another key: what the others wrote does not open
    assert len(sandbox.calls) == 2
    assert (await forged_lookups(keyed, "response"), await forged_lookups(keyed, "gateway")) == ("1.0", "1.0")
    same = start_app(cache_url=redis_server.url, cache_signing_key=SIGNING_KEY.encode())
    await ask(same, "0.0.1")
    assert len(sandbox.calls) == 2  # the same GRAPH_CACHE_SIGNING_KEY: a hit
    other = start_app(cache_url=redis_server.url, cache_signing_key=OTHER_SIGNING_KEY.encode())
    await ask(other, "0.0.1")
    assert len(sandbox.calls) == 3


async def test_a_genuine_value_written_back_after_its_time_is_not_served_as_current(
    start_app: Callable[..., str], sandbox: SandboxGateway, redis_server: RedisServer
) -> None:
    # A replay: sealed values copied while they were current and written back once they expired. The seal proves
    # they are genuine; their own times (the response's expiry, the answer's age) say they are not current.
    url = start_app(cache_url=redis_server.url, cache_ttl_s=1, cache_stale_s=0)
    await ask(url, "1.0.0")
    [response] = response_keys(redis_server)
    answer = NAMESPACE + gateway_key(sandbox_app_id(sandbox), "1.0.0")
    copies = {key: value_of(redis_server.call("GET", key)) for key in (response, answer)}
    await asyncio.sleep(1.2)
    for key, value in copies.items():
        assert value is not None
        redis_server.call("SET", key, value, "EX", "600")
    again = await ask(url, "1.0.0")
    assert again["data"]["miniAppVersion"] == REJECTED
    assert len(sandbox.calls) == 2  # neither the old response nor the old answer served: the gateway was asked
    assert again["extensions"]["cacheAge"] == 0


def sandbox_app_id(sandbox: SandboxGateway) -> str:
    [call] = sandbox.calls[:1]
    assert call.app_id is not None
    return call.app_id
