"""``/graphql``: Strawberry's ASGI view with a per-request context and JSON for every refusal.

Strawberry answers a malformed request with a plain-text 400 (and a JSON body that is not an object, or a batch
item that is not one, with a 500 from an AttributeError). Here every such request gets a 4xx whose body is a
GraphQL-shaped JSON error, before anything is executed.
"""

from __future__ import annotations

import json

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData

from graph.context import Context, build_context
from graph.guard import TOKEN_HEADER
from graph.refusal import refusal
from graph.services import Services

_ALLOWED = ("GET", "POST")


class GraphQLEndpoint(GraphQL[Context, None]):
    """Strawberry's view with a fresh per-request context (loaders are never shared between requests)."""

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

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        services: Services = request.app.state.services
        return build_context(
            services,
            app_auth_token=request.headers.get(TOKEN_HEADER) or None,
            request_id=request.scope.get("state", {}).get("request_id", "-"),
            fresh=_no_cache(request.headers.get("cache-control", "")),
        )

    def decode_json(self, data: str | bytes) -> object:
        # Used for POST bodies and for GET's `variables`/`extensions`: only objects (or a batch of them) make sense.
        try:
            value = json.loads(data)
        except UnicodeDecodeError:
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


def _no_cache(cache_control: str) -> bool:
    """``no-cache`` (or ``max-age=0``, what browsers send on reload): skip cached answers and refresh them."""
    for part in cache_control.lower().split(","):
        name, _, value = part.strip().partition("=")
        if name == "no-cache" or (name == "max-age" and value.strip() == "0"):
            return True
    return False
