"""Clients for the live transports, over real sockets: graphql-transport-ws (the ``websockets`` package) and SSE
(httpx streaming), plus a sandbox whose versions a test can change while subscribers watch."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from graph.sandbox import SEED_VERSIONS

# The client's DEBUG lines carry a weakref proxy (the connection) that the log audit's JSON formatter cannot write;
# they are the test's own frames, not the service's.
logging.getLogger("websockets.client").setLevel(logging.INFO)

SUBSCRIPTION = """
subscription Watch($appVersion: String!, $bundleIds: [String!]) {
  miniAppVersionChanged(appVersion: $appVersion, bundleIds: $bundleIds) {
    __typename
    ... on MiniAppVersion { appVersion bundleId status versionDesc }
    ... on MiniAppVersionError { appVersion bundleId code retryable }
  }
}
"""
WALLET = "com.alipay.alipaywallet"
AMAP = "com.amap.app"


# The seeded versions in a dict the tests change while subscribers watch (the seed itself is read-only); served by
# the `live_sandbox` fixture (tests/conftest.py), which puts them back after each test.
VERSIONS: dict[tuple[str, str], Mapping[str, Any]] = dict(SEED_VERSIONS)


def change(versions: dict[tuple[str, str], Mapping[str, Any]], key: tuple[str, str], **fields: Any) -> None:
    versions[key] = {**versions[key], **fields}


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://", 1) + "/graphql"


class WsClient:
    """One graphql-transport-ws connection; every frame it receives must be text."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(
        cls, base_url: str, payload: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> WsClient:
        ws = await connect(ws_url(base_url), subprotocols=["graphql-transport-ws"], additional_headers=headers)  # type: ignore[list-item]
        client = cls(ws)
        await client.send({"type": "connection_init", **({"payload": payload} if payload is not None else {})})
        return client

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def recv(self, within: float = 10.0) -> dict[str, Any]:
        async with asyncio.timeout(within):
            frame = await self.ws.recv()
        assert isinstance(frame, str), "graphql-transport-ws messages must be text frames"
        message: dict[str, Any] = json.loads(frame)
        return message

    async def acked(self) -> WsClient:
        assert await self.recv() == {"type": "connection_ack"}
        return self

    async def subscribe(self, ident: str, variables: dict[str, Any], query: str = SUBSCRIPTION) -> None:
        await self.send({"id": ident, "type": "subscribe", "payload": {"query": query, "variables": variables}})

    async def payload(self, within: float = 10.0) -> dict[str, Any]:
        """The next ``next`` message's whole payload, data and extensions (pongs answered on the way)."""
        while True:
            message = await self.recv(within)
            if message["type"] == "ping":
                await self.send({"type": "pong"})
                continue
            assert message["type"] == "next", message
            payload: dict[str, Any] = message["payload"]
            return payload

    async def item(self, within: float = 10.0) -> dict[str, Any]:
        """The next ``next`` message's item."""
        item: dict[str, Any] = (await self.payload(within))["data"]["miniAppVersionChanged"]
        return item

    async def closed(self, within: float = 10.0) -> tuple[int | None, str]:
        """Wait for the server to close: (code, reason)."""
        async with asyncio.timeout(within):
            await self.ws.wait_closed()
        return self.ws.close_code, self.ws.close_reason or ""

    async def aclose(self) -> None:
        await self.ws.close()


async def sse_events(
    client: httpx.AsyncClient, base_url: str, variables: dict[str, Any], headers: dict[str, str] | None = None
) -> AsyncGenerator[tuple[str, Any], None]:
    """(event, data) for each Server-Sent Event of one subscription; comments (keep-alives) skipped."""
    body = {"query": SUBSCRIPTION, "variables": variables}
    send = {"accept": "text/event-stream", **(headers or {})}
    async with client.stream("POST", f"{base_url}/graphql", json=body, headers=send) as response:
        if response.status_code != 200:
            await response.aread()
            yield "refused", (response.status_code, response.json())
            return
        assert response.headers["content-type"].startswith("text/event-stream")
        event, data = None, None
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = json.loads(line.removeprefix("data: "))
            elif line == "" and event is not None:
                yield event, data
                event, data = None, None
