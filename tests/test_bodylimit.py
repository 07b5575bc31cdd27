"""The body bound: by Content-Length before reading, and while reading a chunked body, never past the bound."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import httpx
from starlette.types import Message, Receive, Scope, Send

from graph.bodylimit import BodyLimit


async def test_a_chunked_body_over_the_bound_is_refused(start_app: Callable[..., str]) -> None:
    url = start_app(max_body_bytes=2048)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: Transfer-Encoding: chunked
        yield b'{"query": "{ __typename }", "pad": "'
        for _ in range(64):
            yield b"x" * 512
        yield b'"}'

    async with httpx.AsyncClient(base_url=url) as http:
        refused = await http.post("/graphql", content=chunks(), headers={"Content-Type": "application/json"})
        assert refused.status_code == 413
        assert refused.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert "GRAPH_MAX_BODY_BYTES" in refused.json()["errors"][0]["message"]

        async def small() -> AsyncIterator[bytes]:
            yield b'{"query": '
            yield b'"{ __typename }"}'

        ok = await http.post("/graphql", content=small(), headers={"Content-Type": "application/json"})
        assert ok.json() == {"data": {"__typename": "Query"}}


def _receiver(chunk: bytes, count: int) -> tuple[Receive, list[int]]:
    pulled: list[int] = []

    async def receive() -> Message:
        pulled.append(len(chunk))
        return {"type": "http.request", "body": chunk, "more_body": len(pulled) < count}

    return receive, pulled


async def _inner(scope: Scope, receive: Receive, send: Send) -> None:
    message = await receive()
    body = json.dumps({"got": len(message["body"]), "more": message["more_body"]}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def test_reading_stops_one_chunk_past_the_bound() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "http", "path": "/graphql", "method": "POST", "headers": []}
    receive, pulled = _receiver(b"x" * 1000, count=10_000)  # a 10 MB body on offer
    await BodyLimit(_inner, max_bytes=4096)(scope, receive, send)
    assert sum(pulled) == 5000  # 4 chunks within the bound, the 5th crosses it, nothing more is read
    assert sent[0]["status"] == 413

    sent.clear()
    receive, pulled = _receiver(b"x" * 1000, count=4)
    await BodyLimit(_inner, max_bytes=4096)(scope, receive, send)
    assert json.loads(sent[1]["body"]) == {"got": 4000, "more": False}  # handed on whole, as one message


async def test_declared_length_over_the_bound_is_refused_unread() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    receive, pulled = _receiver(b"x", count=1)
    scope: Scope = {"type": "http", "path": "/graphql", "method": "POST", "headers": [(b"content-length", b"5000")]}
    await BodyLimit(_inner, max_bytes=4096)(scope, receive, send)
    assert sent[0]["status"] == 413
    assert pulled == []


async def test_a_client_that_leaves_gets_nothing() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    await BodyLimit(_inner, max_bytes=4096)({"type": "http", "path": "/graphql", "headers": []}, receive, send)
    assert sent == []
