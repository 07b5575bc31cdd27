"""Live subscriptions over real sockets against a sandbox whose versions the tests change: graphql-transport-ws and
SSE, one poll per key in a process, authentication as for queries, and each limit's refusal."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedOK

from graph.app import create_app
from graph.config import Settings
from graph.gateway.client import Credentials
from graph.sandbox import Fault, SandboxGateway
from tests.conftest import API_KEY, MERCHANT_TOKEN
from tests.live_client import AMAP, VERSIONS, WALLET, WsClient, change, sse_events, ws_url
from tests.servers import serve

POLL_S = 0.4


@pytest.fixture
def start_live(credentials: Credentials, live_gateway_url: str) -> Iterator[Callable[..., str]]:
    base = Settings(
        credentials=credentials,
        gateway_url=live_gateway_url,
        allow_anonymous=True,
        timeout_s=2.0,
        retries=0,
        live_poll_s=POLL_S,
        rate_limit_per_min=0,
    )
    with contextlib.ExitStack() as stack:

        def start(**changes: Any) -> str:
            return stack.enter_context(serve(create_app(replace(base, **changes)), lifespan="on"))

        yield start


def detail_calls(sandbox: SandboxGateway) -> int:
    return sum(1 for call in sandbox.calls if call.method == "alipay.open.mini.version.detail.query")


async def test_current_state_then_only_what_changed_over_websocket(
    start_live: Callable[..., str], live_sandbox: SandboxGateway
) -> None:
    url = start_live()
    client = await (await WsClient.open(url)).acked()
    await client.subscribe("1", {"appVersion": "0.0.1", "bundleIds": [WALLET, AMAP]})
    first = [await client.item(), await client.item()]
    assert [(i["bundleId"], i["__typename"]) for i in first] == [(WALLET, "MiniAppVersion"), (AMAP, "MiniAppVersion")]
    # Polls that find nothing new send nothing.
    with pytest.raises(TimeoutError):
        await client.item(within=3 * POLL_S)
    change(VERSIONS, ("0.0.1", WALLET), status="OFFLINE", version_desc="withdrawn")
    loop = asyncio.get_running_loop()
    changed_at = loop.time()
    event = await client.item(within=POLL_S + 2.0)
    assert loop.time() - changed_at < POLL_S + 1.0  # within one poll interval (and the machine's slack)
    assert event == {
        "__typename": "MiniAppVersion",
        "appVersion": "0.0.1",
        "bundleId": WALLET,
        "status": "OFFLINE",
        "versionDesc": "withdrawn",
    }
    with pytest.raises(TimeoutError):  # the other client did not change: no event for it
        await client.item(within=3 * POLL_S)
    await client.send({"id": "1", "type": "complete"})
    await client.aclose()


async def test_sse_streams_the_state_and_its_changes(start_live: Callable[..., str]) -> None:
    url = start_live()
    async with httpx.AsyncClient(timeout=10) as http:
        events = sse_events(http, url, {"appVersion": "0.0.2", "bundleIds": [WALLET]})
        event, data = await anext(events)
        assert event == "next"
        assert data["data"]["miniAppVersionChanged"]["bundleId"] == WALLET
        change(VERSIONS, ("0.0.2", WALLET), status="RELEASE")
        event, data = await asyncio.wait_for(anext(events), POLL_S + 2.0)
        assert (event, data["data"]["miniAppVersionChanged"]["status"]) == ("next", "RELEASE")
        await events.aclose()


async def test_sse_answers_a_query_as_one_event_then_complete(start_live: Callable[..., str]) -> None:
    url = start_live()
    body = {"query": '{ miniAppVersion(appVersion: "0.0.1") { status } }'}
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(f"{url}/graphql", json=body, headers={"accept": "text/event-stream"})
    assert response.status_code == 200
    assert response.text.startswith('event: next\ndata: {"data":{"miniAppVersion":{"status":"RELEASE"}}')
    assert response.text.endswith("\n\nevent: complete\n\n")


async def test_one_poll_per_key_for_all_subscribers_of_an_instance(
    start_live: Callable[..., str], live_sandbox: SandboxGateway
) -> None:
    url = start_live()
    clients = [await (await WsClient.open(url)).acked() for _ in range(20)]
    for client in clients:
        await client.subscribe("s", {"appVersion": "0.1.0", "bundleIds": [WALLET]})
    for client in clients:
        assert (await client.item())["bundleId"] == WALLET
    live_sandbox.calls.clear()
    await asyncio.sleep(5 * POLL_S + 0.1)
    # One refresh per interval for the key, whatever the number of subscribers (5 intervals, and a little slack).
    assert 4 <= detail_calls(live_sandbox) <= 6
    change(VERSIONS, ("0.1.0", WALLET), status="GRAY", gray_strategy="p50")
    for client in clients:
        assert (await client.item(within=POLL_S + 2.0))["status"] == "GRAY"
    for client in clients:
        await client.aclose()


async def test_a_gateway_that_stays_down_makes_one_event_not_one_a_poll(
    start_live: Callable[..., str], live_sandbox: SandboxGateway
) -> None:
    # Without a good answer to fall back on (expired, GRAPH_CACHE_STALE_S=0): one retryable error, then one recovery.
    # (Within its TTL a cached answer still serves when a poll fails: it is current, and nothing changed.)
    url = start_live(breaker_failures=0, cache_ttl_s=POLL_S / 2, cache_stale_s=0)
    client = await (await WsClient.open(url)).acked()
    await client.subscribe("1", {"appVersion": "1.0.0", "bundleIds": [WALLET]})
    assert (await client.item())["__typename"] == "MiniAppVersion"
    live_sandbox.fail_next(Fault.HTTP_502, times=1000)
    down = await client.item(within=POLL_S + 2.0)
    assert (down["__typename"], down["code"], down["retryable"]) == ("MiniAppVersionError", "ALIPAY_UNAVAILABLE", True)
    with pytest.raises(TimeoutError):
        await client.item(within=4 * POLL_S)
    live_sandbox.reset()
    back = await client.item(within=POLL_S + 2.0)
    assert back["__typename"] == "MiniAppVersion"
    await client.aclose()


async def test_while_the_gateway_is_down_subscribers_get_the_stale_marker_once(
    start_live: Callable[..., str], live_sandbox: SandboxGateway
) -> None:
    # With stale-if-error (the default): the last good answer, marked stale, once; then nothing; then fresh again.
    url = start_live(breaker_failures=0, cache_ttl_s=POLL_S / 2)
    client = await (await WsClient.open(url)).acked()
    await client.subscribe("1", {"appVersion": "1.0.0", "bundleIds": [WALLET]})
    first = await client.payload()
    assert "stale" not in first["extensions"]
    live_sandbox.fail_next(Fault.HTTP_502, times=1000)
    stale = await client.payload(within=POLL_S + 2.0)
    assert stale["data"] == first["data"]
    assert stale["extensions"]["stale"] is True
    with pytest.raises(TimeoutError):
        await client.payload(within=4 * POLL_S)
    live_sandbox.reset()
    back = await client.payload(within=POLL_S + 2.0)
    assert back["data"] == first["data"]
    assert "stale" not in back["extensions"]
    await client.aclose()


async def test_arguments_are_checked_before_any_gateway_call(
    start_live: Callable[..., str], live_sandbox: SandboxGateway
) -> None:
    url = start_live(max_bundle_ids=2)
    client = await (await WsClient.open(url)).acked()
    cases: list[tuple[str, dict[str, Any]]] = [
        ("blank", {"appVersion": " "}),
        ("many", {"appVersion": "0.0.1", "bundleIds": [WALLET, AMAP, "com.amap.other"]}),
        ("bad", {"appVersion": "0.0.1", "bundleIds": ["not a client"]}),
    ]
    for ident, variables in cases:
        await client.subscribe(ident, variables)
        message = await client.recv()
        assert message["type"] == "next"
        assert message["id"] == ident
        assert message["payload"]["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert await client.recv() == {"type": "complete", "id": ident}
    await client.subscribe("invalid", {}, query="subscription { nothing }")
    message = await client.recv()
    assert message["type"] == "error"
    assert message["payload"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert detail_calls(live_sandbox) == 0
    await client.aclose()


async def test_authentication_as_for_queries(start_live: Callable[..., str]) -> None:
    url = start_live(allow_anonymous=False, api_keys=frozenset({API_KEY}))
    refused = await WsClient.open(url)
    assert (await refused.closed())[0] == 4403
    wrong = await WsClient.open(url, {"Authorization": "Bearer not-the-key"})
    assert (await wrong.closed())[0] == 4403
    in_payload = await (await WsClient.open(url, {"Authorization": f"Bearer {API_KEY}"})).acked()
    by_header = await (await WsClient.open(url, headers={"Authorization": f"Bearer {API_KEY}"})).acked()
    token = {"Authorization": f"Bearer {API_KEY}", "X-Alipay-App-Auth-Token": MERCHANT_TOKEN}
    merchant = await (await WsClient.open(url, token)).acked()
    await merchant.subscribe("m", {"appVersion": "0.0.1", "bundleIds": [WALLET]})
    assert (await merchant.item())["bundleId"] == WALLET
    malformed = await WsClient.open(url, {"Authorization": f"Bearer {API_KEY}", "X-Alipay-App-Auth-Token": "a b"})
    assert (await malformed.closed())[0] == 4400
    for client in (in_payload, by_header, merchant):
        await client.aclose()
    async with httpx.AsyncClient(timeout=10) as http:
        event, (status, body) = await anext(sse_events(http, url, {"appVersion": "0.0.1"}))
    assert (event, status, body["errors"][0]["extensions"]["code"]) == ("refused", 401, "UNAUTHENTICATED")


async def test_a_closed_service_refuses_subscriptions(start_live: Callable[..., str]) -> None:
    url = start_live(allow_anonymous=False)
    client = await WsClient.open(url, {"Authorization": "Bearer anything"})
    code, reason = await client.closed()
    assert code == 4403
    assert "closed" in reason


async def test_protocol_refusals_close_with_their_codes(start_live: Callable[..., str]) -> None:
    url = start_live(live_init_timeout_s=0.3)
    silent = await connect(ws_url(url), subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    async with asyncio.timeout(5):
        await silent.wait_closed()
    assert silent.close_code == 4408

    twice = await (await WsClient.open(url)).acked()
    await twice.send({"type": "connection_init"})
    assert (await twice.closed())[0] == 4429

    early = await connect(ws_url(url), subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    await early.send('{"id": "1", "type": "subscribe", "payload": {"query": "subscription { __typename }"}}')
    async with asyncio.timeout(5):
        await early.wait_closed()
    assert early.close_code == 4401

    duplicate = await (await WsClient.open(url)).acked()
    await duplicate.subscribe("same", {"appVersion": "0.0.1", "bundleIds": [WALLET]})
    await duplicate.subscribe("same", {"appVersion": "0.0.1", "bundleIds": [WALLET]})
    assert (await duplicate.closed())[0] == 4409

    binary = await (await WsClient.open(url)).acked()
    await binary.ws.send(b'{"type": "ping"}')
    assert (await binary.closed())[0] == 4400

    garbage = await (await WsClient.open(url)).acked()
    await garbage.ws.send("not json")
    assert (await garbage.closed())[0] == 4400

    pinged = await (await WsClient.open(url)).acked()
    await pinged.send({"type": "ping"})
    assert await pinged.recv() == {"type": "pong"}
    await pinged.aclose()

    with pytest.raises(Exception, match="403"):
        await connect(ws_url(url))  # no graphql-transport-ws subprotocol offered: the handshake is refused


async def test_limits_refuse_with_their_codes(start_live: Callable[..., str]) -> None:
    url = start_live(live_max_per_connection=2, live_max_per_key=3, live_max_connections_per_key=2)
    first = await (await WsClient.open(url)).acked()
    for ident in ("a", "b"):
        await first.subscribe(ident, {"appVersion": "0.0.1", "bundleIds": [WALLET]})
        await first.item()
    await first.subscribe("c", {"appVersion": "0.0.1", "bundleIds": [WALLET]})
    refused = await first.recv()
    assert refused["type"] == "error"
    assert refused["id"] == "c"
    assert refused["payload"][0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
    assert "GRAPH_LIVE_MAX_PER_CONNECTION" in refused["payload"][0]["message"]

    second = await (await WsClient.open(url)).acked()
    await second.subscribe("d", {"appVersion": "0.0.1", "bundleIds": [WALLET]})
    await second.item()
    await second.subscribe("e", {"appVersion": "0.0.1", "bundleIds": [WALLET]})
    over_key = await second.recv()
    assert over_key["type"] == "error"
    assert "GRAPH_LIVE_MAX_PER_KEY" in over_key["payload"][0]["message"]

    third = await WsClient.open(url)
    code, reason = await third.closed()
    assert code == 4429
    assert "GRAPH_LIVE_MAX_CONNECTIONS_PER_KEY" in reason
    async with httpx.AsyncClient(timeout=10) as http:
        event, (status, body) = await anext(sse_events(http, url, {"appVersion": "0.0.1"}))
    assert (event, status, body["errors"][0]["extensions"]["code"]) == ("refused", 429, "TOO_MANY_SUBSCRIPTIONS")

    # A subscription completed by its client frees its place.
    await first.send({"id": "a", "type": "complete"})
    await asyncio.sleep(0.2)
    await second.subscribe("f", {"appVersion": "0.0.1", "bundleIds": [WALLET]})
    assert (await second.item())["bundleId"] == WALLET
    await first.aclose()
    await second.aclose()


async def test_pings_and_lifetime(start_live: Callable[..., str]) -> None:
    url = start_live(live_ping_s=0.3, live_max_lifetime_s=3.0)
    quiet = await (await WsClient.open(url)).acked()
    assert await quiet.recv() == {"type": "ping"}
    # websockets' client answers protocol pings itself, but not graphql-transport-ws pings: no pong, closed.
    code, reason = await quiet.closed()
    assert code == 1001
    assert "pong" in reason

    answering = await (await WsClient.open(url)).acked()
    opened = asyncio.get_running_loop().time()
    with pytest.raises(ConnectionClosedOK):
        await answering.item()  # answers each ping and is kept open, until its lifetime is over
    assert asyncio.get_running_loop().time() - opened > 2.5
    code, reason = await answering.closed()
    assert code == 1001
    assert "GRAPH_LIVE_MAX_LIFETIME_S" in reason


async def test_messages_that_are_not_the_protocols_are_refused(start_live: Callable[..., str]) -> None:
    url = start_live()
    unknown = await (await WsClient.open(url)).acked()
    await unknown.send({"type": "start", "id": "1"})  # subscriptions-transport-ws, the older protocol
    code, reason = await unknown.closed()
    assert code == 4400
    assert "'start'" in reason

    bad_payload = await WsClient.open(url, payload=None)
    await bad_payload.send({"type": "connection_init", "payload": ["Bearer x"]})
    assert await bad_payload.recv() == {"type": "connection_ack"}  # the first init (no payload) was fine
    assert (await bad_payload.closed())[0] == 4429  # the second one is one too many, whatever it holds

    listed = await connect(ws_url(url), subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    await listed.send('{"type": "connection_init", "payload": ["Bearer x"]}')
    async with asyncio.timeout(5):
        await listed.wait_closed()
    assert listed.close_code == 4400

    client = await (await WsClient.open(url)).acked()
    await client.send({"type": "complete", "id": "never-started"})  # nothing to stop: ignored
    await client.send({"type": "pong"})  # an unasked pong: ignored
    await client.send({"type": "subscribe", "id": "", "payload": {"query": "subscription { __typename }"}})
    assert (await client.closed())[0] == 4400

    burst = await (await WsClient.open(url)).acked()
    # A second init closes the connection; what the client sent after it, before it heard, is not answered.
    await burst.send({"type": "connection_init"})
    await burst.send({"type": "ping"})
    assert (await burst.closed())[0] == 4429


async def test_subscribe_payloads_that_are_not_operations_are_errors(start_live: Callable[..., str]) -> None:
    url = start_live()
    client = await (await WsClient.open(url)).acked()
    for ident, payload, code in [
        ("list", ["subscription"], "BAD_REQUEST"),
        ("none", {"query": None}, "BAD_REQUEST"),
        (
            "hash",
            {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}},
            "PERSISTED_QUERY_NOT_FOUND",
        ),
    ]:
        await client.send({"type": "subscribe", "id": ident, "payload": payload})
        message = await client.recv()
        assert (message["type"], message["id"]) == ("error", ident)
        assert message["payload"][0]["extensions"]["code"] == code
    await client.aclose()


async def test_sse_refusals_before_the_stream_starts(start_live: Callable[..., str]) -> None:
    url = start_live(live_max_per_key=1)
    stream = {"accept": "text/event-stream"}
    async with httpx.AsyncClient(timeout=10) as http:
        form = await http.post(f"{url}/graphql", content=b"query=x", headers={**stream, "content-type": "text/plain"})
        assert form.status_code == 415
        invalid = await http.post(f"{url}/graphql", json={"query": "subscription { nothing }"}, headers=stream)
        assert invalid.status_code == 400
        assert invalid.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert "data" not in invalid.json()
        # One subscription held (over GET, the other form) leaves none for a second one: 429.
        query = {"query": 'subscription { miniAppVersionChanged(appVersion: "0.0.1") { __typename } }'}
        async with http.stream("GET", f"{url}/graphql", params=query, headers=stream) as held:
            assert held.status_code == 200
            lines = held.aiter_lines()
            assert await anext(lines) == "event: next"
            second = await http.post(f"{url}/graphql", json=query, headers=stream)
            assert second.status_code == 429
            assert second.json()["errors"][0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
        # The client went away: its subscription is released.
        for _ in range(50):
            again = await http.post(f"{url}/graphql", json={"query": "{ __typename }"}, headers=stream)
            if again.status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert again.status_code == 200


async def test_sse_keeps_the_stream_alive_then_ends_it_at_its_lifetime(start_live: Callable[..., str]) -> None:
    url = start_live(live_ping_s=0.2, live_max_lifetime_s=1.0)
    query = 'subscription { miniAppVersionChanged(appVersion: "0.0.1", bundleIds: ["com.amap.app"]) { __typename } }'
    body = {"query": query}
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(f"{url}/graphql", json=body, headers={"accept": "text/event-stream"})
    assert response.status_code == 200
    assert response.text.startswith("event: next\ndata: ")
    assert "\n\n:\n\n" in response.text  # keep-alive comments while nothing changed
    assert "event: complete" not in response.text  # ended by the lifetime, not by the subscription
