"""The request-body bound on /graphql (GRAPH_MAX_BODY_BYTES): 413 with a JSON error, never more read than that.

A declared ``Content-Length`` over the bound is refused before a byte is read. A body without one (chunked) is
read here up to the bound: one chunk past it and the request is refused, the rest never read. A body within the
bound is handed on as one message, so nothing behind this (Strawberry, a response cache) ever sees an
oversized body or needs its own check.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from graph.asgi_body import replay
from graph.refusal import refusal


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int, graphql_path: str = "/graphql") -> None:
        self.app = app
        self._max = max_bytes
        self._path = graphql_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self._path:
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self._max:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to answer
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, replay(b"".join(chunks), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = refusal(
            413, f"request body is larger than {self._max} bytes (GRAPH_MAX_BODY_BYTES)", "BAD_USER_INPUT"
        )
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            # The server (h11, httptools) already refused a length that is not a number.
            return int(value) if value.isdigit() else None
    return None
