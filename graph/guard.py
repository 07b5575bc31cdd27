"""The HTTP policy in front of /graphql: caller keys, the merchant-token header, body size.

Pure ASGI (no BaseHTTPMiddleware) so it adds no task per request and never buffers bodies. Request ids,
counts and the request's log line come from ``graph.telemetry.RequestTelemetry``, outside this layer.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Collection
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

TOKEN_HEADER = "x-alipay-app-auth-token"  # noqa: S105  (a header name)
# app_auth_tokens are ~40 characters of letters and digits; bound them so a header cannot carry anything else.
_TOKEN = re.compile(r"[A-Za-z0-9._-]{1,128}")


def _error_body(message: str, code: str) -> bytes:
    return json.dumps({"errors": [{"message": message, "extensions": {"code": code}}]}).encode()


class Guard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        api_keys: Collection[str],
        allow_anonymous: bool,
        max_body_bytes: int,
        graphql_path: str = "/graphql",
    ) -> None:
        self.app = app
        self._keys = [key.encode() for key in api_keys]
        self._anonymous = allow_anonymous
        self._max_body = max_body_bytes
        self._path = graphql_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._refusal(scope, headers) if scope["path"] == self._path else None
        if refusal is None:
            await self.app(scope, receive, send)
        else:
            await self._respond(send, *refusal)

    def _refusal(self, scope: Scope, headers: Headers) -> tuple[int, str, str, dict[str, str]] | None:
        # The GraphiQL page itself is public; the operations it sends are not.
        if scope["method"] == "GET" and "text/html" in headers.get("accept", "") and not scope.get("query_string"):
            return None
        if not self._authorised(headers.get("authorization", "")):
            if not self._keys and not self._anonymous:
                message = (
                    "this service is closed: no API keys are configured (GRAPH_API_KEYS) and anonymous access is off"
                )
            else:
                message = "missing or unknown API key: send Authorization: Bearer <key>"
            return 401, message, "UNAUTHENTICATED", {"www-authenticate": "Bearer"}
        token = headers.get(TOKEN_HEADER)
        if token is not None and not _TOKEN.fullmatch(token):
            return (
                400,
                "X-Alipay-App-Auth-Token is malformed (expected letters, digits, '.', '_' or '-')",
                "BAD_USER_INPUT",
                {},
            )
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self._max_body):
            return (
                413,
                f"request body is larger than {self._max_body} bytes (GRAPH_MAX_BODY_BYTES)",
                "BAD_USER_INPUT",
                {},
            )
        return None

    def _authorised(self, authorization: str) -> bool:
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() == "bearer" and key.strip():
            given = key.strip().encode()
            # Compare against every key, never stopping early: timing says nothing about which key nearly matched.
            matched = False
            for candidate in self._keys:
                matched |= hmac.compare_digest(given, candidate)
            return matched
        return self._anonymous

    async def _respond(self, send: Any, status: int, message: str, code: str, headers: dict[str, str]) -> None:
        body = _error_body(message, code)
        raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        raw_headers += [(k.encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})
