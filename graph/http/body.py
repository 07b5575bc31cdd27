"""Reading a request body once, within GRAPH_MAX_BODY_BYTES, and writing an answer in one go."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import Receive, Send

from graph.http.request import RequestError

JSON_CONTENT_TYPE = b"application/json"
GRAPHQL_RESPONSE_CONTENT_TYPE = b"application/graphql-response+json; charset=utf-8"


class Disconnected(Exception):
    """The client went away before its body arrived: nothing to answer."""


async def read_body(receive: Receive, declared: bytes | None, max_bytes: int) -> bytes:
    """The whole body. A declared length over the bound is refused before a byte is read; a body without one
    (chunked) is read up to the bound, and one chunk past it is refused, the rest never read."""
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(max_bytes: int) -> RequestError:
    return RequestError(
        413, f"request body is larger than {max_bytes} bytes (GRAPH_MAX_BODY_BYTES)", code="BAD_USER_INPUT"
    )


async def write(
    send: Send, status: int, body: bytes, content_type: bytes, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """One answer: its head and its whole body, each one message."""
    head = [(b"content-type", content_type), (b"content-length", b"%d" % len(body)), *headers]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})
