"""The body bound: by Content-Length before reading, and while reading a chunked body, never past the bound."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from starlette.types import Message, Receive

from graph.http.request import RequestError
from graph.http.wire import Disconnected, read_body


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


async def test_reading_stops_one_chunk_past_the_bound() -> None:
    receive, pulled = _receiver(b"x" * 1000, count=10_000)  # a 10 MB body on offer
    with pytest.raises(RequestError) as refused:
        await read_body(receive, None, 4096)
    assert refused.value.status == 413
    assert sum(pulled) == 5000  # 4 chunks within the bound, the 5th crosses it, nothing more is read

    receive, pulled = _receiver(b"x" * 1000, count=4)
    assert await read_body(receive, None, 4096) == b"x" * 4000  # whole, once


async def test_declared_length_over_the_bound_is_refused_unread() -> None:
    receive, pulled = _receiver(b"x", count=1)
    with pytest.raises(RequestError) as refused:
        await read_body(receive, b"5000", 4096)
    assert refused.value.status == 413
    assert pulled == []


async def test_a_client_that_leaves_gets_nothing() -> None:
    async def receive() -> Message:
        return {"type": "http.disconnect"}

    with pytest.raises(Disconnected):
        await read_body(receive, None, 4096)
