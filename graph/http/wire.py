"""The bytes on the wire: a request body read once within GRAPH_MAX_BODY_BYTES, answers written in one go
(JSON in the negotiated media type, refusals, 304s, the playground), and the validators of cacheable GETs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import orjson
from starlette.types import Receive, Send

from graph.http import request as parsing
from graph.http.request import MediaType, RequestError
from graph.ide.page import Page

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


def content_type(media: MediaType) -> bytes:
    return GRAPHQL_RESPONSE_CONTENT_TYPE if media == parsing.GRAPHQL_RESPONSE_JSON else JSON_CONTENT_TYPE


def weak_etag(body: bytes) -> bytes:
    """A weak validator over the answer without its cacheAge: same data, same tag."""
    return b'W/"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"'


def matches(if_none_match: str | None, etag: bytes) -> bool:
    """Weak comparison (RFC 9110 13.1.2): ``W/`` prefixes ignored; ``*`` matches anything."""
    if not if_none_match:
        return False
    opaque = etag.decode().removeprefix("W/")
    return any(tag.strip() == "*" or tag.strip().removeprefix("W/") == opaque for tag in if_none_match.split(","))


async def not_modified(send: Send, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": 304, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


async def send_page(send: Send, page: Page) -> None:
    policy = page.content_security_policy
    extra = [] if policy is None else [(b"content-security-policy", policy.encode())]
    await write(send, 200, page.html.encode(), b"text/html; charset=utf-8", extra)


async def refuse(
    send: Send,
    status: int,
    message: str,
    code: str,
    media: MediaType,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})
    await write(send, status, body, content_type(media), headers or [])
