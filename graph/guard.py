"""The HTTP policy in front of /graphql: caller keys and the merchant-token header.

Pure ASGI (no BaseHTTPMiddleware) so it adds no task per request and never buffers bodies. Request ids,
counts and the request's log line come from ``graph.telemetry.RequestTelemetry``, outside this layer; the body
bound is ``graph.bodylimit``'s. It tells what comes after it (``graph.ratelimit``) who the caller is:
``scope["state"]["caller"]``, a fingerprint of the API key that matched (never the key), or None for an
anonymous caller.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Collection

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from graph.refusal import refusal

TOKEN_HEADER = "x-alipay-app-auth-token"  # noqa: S105  (a header name)
# app_auth_tokens are ~40 characters of letters and digits; bound them so a header cannot carry anything else.
_TOKEN = re.compile(r"[A-Za-z0-9._-]{1,128}")


def fingerprint(key: str) -> str:
    """A name for an API key in rate-limit buckets: tells keys apart, gives nothing of the key away."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class Guard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        api_keys: Collection[str],
        allow_anonymous: bool,
        graphql_path: str = "/graphql",
    ) -> None:
        self.app = app
        self._keys = [(key.encode(), fingerprint(key)) for key in api_keys]
        self._anonymous = allow_anonymous
        self._path = graphql_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self._path:
            await self.app(scope, receive, send)
            return
        refused = self._refusal(scope, Headers(scope=scope), scope.setdefault("state", {}))
        if refused is None:
            await self.app(scope, receive, send)
        else:
            await refusal(*refused)(scope, receive, send)

    def _refusal(
        self, scope: Scope, headers: Headers, state: dict[str, object]
    ) -> tuple[int, str, str, dict[str, str]] | None:
        # The GraphiQL page itself is public; the operations it sends are not.
        if scope["method"] == "GET" and "text/html" in headers.get("accept", "") and not scope.get("query_string"):
            return None
        authorised, state["caller"] = self._authorised(headers.get("authorization", ""))
        if not authorised:
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
        return None

    def _authorised(self, authorization: str) -> tuple[bool, str | None]:
        """(let in?, the matched key's fingerprint or None)."""
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() == "bearer" and key.strip():
            given = key.strip().encode()
            # Compare against every key, never stopping early: timing says nothing about which key nearly matched.
            matched = None
            for candidate, name in self._keys:
                if hmac.compare_digest(given, candidate):
                    matched = name
            return matched is not None, matched
        return self._anonymous, None
