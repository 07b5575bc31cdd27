"""``/graphql``: Strawberry's ASGI view with a per-request context and JSON for every refusal.

Strawberry answers a malformed request with a plain-text 400 (and a JSON body that is not an object, or a batch
item that is not one, with a 500 from an AttributeError). Here every such request gets a 4xx whose body is a
GraphQL-shaped JSON error, before anything is executed.
"""

from __future__ import annotations

from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData

from graph.context import Context, http_context
from graph.ide.page import Page
from graph.refusal import refusal

_ALLOWED = ("GET", "POST")


class GraphQLEndpoint(GraphQL[Context, None]):
    """Strawberry's view with a fresh per-request context (loaders are never shared between requests).

    With ``page`` it serves our playground instead of Strawberry's, whose scripts come from a CDN.
    """

    def __init__(self, *args: Any, page: Page | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._page = page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in _ALLOWED:
            response: Response = refusal(
                405, "/graphql takes GET and POST", "BAD_REQUEST", {"Allow": ", ".join(_ALLOWED)}
            )
            await response(scope, receive, send)
            return
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            response = await self.run(Request(scope, receive))
        except HTTPException as exc:
            status = 415 if exc.reason == "Unsupported content type" else exc.status_code
            response = refusal(status, _reason(exc.reason), "BAD_REQUEST")
        await response(scope, receive, send)

    async def render_graphql_ide(self, request: Request) -> Response:
        if self._page is None:
            return await super().render_graphql_ide(request)
        return HTMLResponse(self._page.html, headers={"content-security-policy": self._page.content_security_policy})

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        return http_context(request.app.state.services, request.headers, request.scope.get("state", {}))

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        # Used for POST bodies and for GET's `variables`/`extensions`: only objects (or a batch of them) make sense.
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:  # a ValueError: Strawberry only turns json's own into a 400
            raise HTTPException(400, "Unable to parse request body as JSON") from None
        if isinstance(value, list):
            if not all(isinstance(item, dict) for item in value):
                raise HTTPException(400, "expected a JSON object (a batch: an array of objects)")
        elif not isinstance(value, dict):
            raise HTTPException(400, 'expected a JSON object such as {"query": "{ ... }"}')
        return value

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData | list[GraphQLRequestData]:
        data = await super().parse_http_body(request)
        # Strawberry checks these for a single operation only, and never checks operationName.
        for operation in data if isinstance(data, list) else [data]:
            _check_types(operation)
        return data


def _check_types(operation: GraphQLRequestData) -> None:
    for name, value, kind in (
        ("query", operation.query, str),
        ("variables", operation.variables, dict),
        ("extensions", operation.extensions, dict),
        ("operationName", operation.operation_name, str),
    ):
        if value is not None and not isinstance(value, kind):
            article = "an object" if kind is dict else "a string"
            raise HTTPException(400, f"The GraphQL operation's `{name}` must be {article} or null, if provided.")


def _reason(reason: str) -> str:
    if reason == "Batching is not enabled":
        return "batched operations (a JSON array) are off; set GRAPH_ALLOW_BATCHING=true to allow them"
    if reason == "Too many operations":
        return "too many operations in one batch (GRAPH_MAX_BATCH_OPERATIONS)"
    if reason == "Unsupported content type":
        return "unsupported content type: send application/json (or GET with ?query=)"
    return reason
