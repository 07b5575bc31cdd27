"""The /graphql fast path: a whole-response cache, and direct execution of plain JSON queries.

Pure ASGI, behind the guard (so only authorised callers reach it). The key is the operation as the caller
sent it (document with insignificant white space, commas and comments dropped, operation name, variables
with sorted keys) plus who asks (a hash of the merchant token and of the caller's API key): tenants never
share. A hit skips parsing, validation and execution. Only responses whose every answer may be reused are
stored, for the shortest lifetime left among them; a response carrying any error other than a (cacheable)
Alipay business error is not. ``Cache-Control: no-cache`` skips the lookup; the fresh response replaces it.

A POST of a plain JSON query that misses is executed here, straight on the schema: Strawberry's HTTP view
costs more than the execution of a cached answer, and the result is at hand to store without re-parsing it.
Everything else (GET, the GraphiQL page, batches, other content types, persisted-query extensions) goes to
Strawberry's view, GET responses through the same cache.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import time
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import parse_qs

import orjson
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.exceptions import MissingQueryError
from strawberry.http import process_result
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from graph import request
from graph.asgi_body import read_body, replay
from graph.cache import AnswerCache, Entry
from graph.context import http_context
from graph.freshness import Freshness, no_cache
from graph.guard import TOKEN_HEADER
from graph.telemetry import Telemetry

KEY_PREFIX = "response:"
# Until when (epoch seconds) the response just sent may be reused, left in the request's scope state for the
# persisted-query layer's Cache-Control (graph.persisted); absent when it may not be.
EXPIRES_AT = "response_expires_at"
_CACHEABLE_ERRORS = {"ALIPAY_BUSINESS_ERROR"}
_QUERIES_ONLY = (OperationType.QUERY,)
_JSON = (b"content-type", b"application/json")

# A lexer just good enough to drop what GraphQL ignores (white space, commas, comments) and keep every other
# token exactly, strings included. It may fail to merge two equivalent spellings (a miss); it never merges
# two different documents, because tokens are only ever re-joined, not changed.
_TOKEN = re.compile(
    r'(?P<string>"""(?:[^"\\]|\\.|"(?!""))*"""|"(?:[^"\\\n]|\\.)*")'
    r"|(?P<skip>[\s,]+|#[^\n\r]*)"
    r"|(?P<punct>[!$&()\[\]{}:=@|])"
    r'|(?P<word>[^\s,#"!$&()\[\]{}:=@|]+)'
    r"|(?P<other>.)",  # a stray quote: not a valid document, so keep it as sent
    re.DOTALL,
)


@functools.lru_cache(maxsize=1024)
def normalise(document: str) -> str:
    """The document's significant tokens, a space only between two words (memoised: a hit costs a lookup)."""
    out: list[str] = []
    previous_word = False
    for match in _TOKEN.finditer(document):
        kind = match.lastgroup
        if kind == "other":
            return document
        if kind == "skip":
            continue
        word = kind == "word"
        if word and previous_word:
            out.append(" ")
        out.append(match.group())
        previous_word = word
    return "".join(out)


class Operation(NamedTuple):
    query: str
    variables: dict[str, Any]
    operation_name: str | None
    digest: str  # of the normalised document, operation name and sorted variables


@functools.lru_cache(maxsize=4096)
def parse_operation(payload: bytes, is_get: bool) -> Operation | None:
    """One plain query from a POST body or a GET query string (None: anything else). Memoised on the raw
    bytes: clients send the same request over and over, and then parsing and hashing cost one lookup."""
    try:
        if is_get:
            params = parse_qs(payload.decode("latin-1"))
            request: Any = {name: values[0] for name, values in params.items()}
            if "variables" in request:
                request["variables"] = orjson.loads(request["variables"])
        else:
            request = orjson.loads(payload)
    except (orjson.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(request, dict) or request.get("extensions"):
        return None  # a batch, or persisted queries and other protocols: not ours to short-cut
    query, variables, name = request.get("query"), request.get("variables"), request.get("operationName")
    if not isinstance(query, str) or not isinstance(variables, dict | None) or not isinstance(name, str | None):
        return None
    if not query.strip():
        return None  # Strawberry's view answers "no query" with a 400
    variables_text = orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS)
    ident = b"\x00".join((normalise(query).encode(), (name or "").encode(), variables_text))
    return Operation(query, variables or {}, name, hashlib.sha256(ident).hexdigest())


def cache_key(operation: Operation, headers: Headers) -> str:
    who = f"{_digest(headers.get(TOKEN_HEADER))}|{_digest(headers.get('authorization'))}"
    return KEY_PREFIX + hashlib.sha256(f"{operation.digest}|{who}".encode()).hexdigest()


def _digest(value: str | None) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32] if value else "-"


class ResponseCache:
    def __init__(
        self,
        app: ASGIApp,
        *,
        default_ttl_s: float,
        graphql_path: str = "/graphql",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self._default_ttl_s = default_ttl_s
        self._path = graphql_path
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self._path or scope["method"] not in ("GET", "POST"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        is_get = scope["method"] == "GET"
        body = b"" if is_get else await read_body(receive)
        operation = self._operation(headers, body, is_get, scope)
        if operation is None:  # not a single plain query: Strawberry answers it as usual
            await self.app(scope, replay(body, receive), send)
            return
        key = cache_key(operation, headers)
        cache: AnswerCache = scope["app"].state.services.responses
        if not no_cache(headers.get("cache-control", "")):
            telemetry: Telemetry = scope["app"].state.telemetry
            started = time.perf_counter()
            with telemetry.tracing.span("cache.get", {"cache.name": "response", "cache.backend": cache.name}) as span:
                entry = await cache.get(key)
                span.set("cache.hit", entry is not None)
            state = request.current()
            if state is not None:
                state.response_cache = "miss" if entry is None else "hit"
            if entry is not None:
                scope.setdefault("state", {})[EXPIRES_AT] = entry.payload.get("expires")
                await _send_hit(send, entry, self._clock())
                # Counted like an executed operation, with the name and outcome it had when it was stored.
                operation_seen = entry.payload.get("operation") or {}
                telemetry.operation(
                    str(operation_seen.get("name", "anonymous")),
                    str(operation_seen.get("outcome", "ok")),
                    time.perf_counter() - started,
                    [str(code) for code in operation_seen.get("codes", [])],
                )
                return
        freshness = Freshness()
        state = scope.setdefault("state", {})
        state["freshness"] = freshness
        if is_get:
            captured = _Capture(send)
            await self.app(scope, replay(body, receive), captured)
            result = _parsed(captured.body) if captured.status == 200 and not captured.streamed else None
        else:
            result = await self._execute(scope, headers, operation, state, send)
        if result is not None:
            await self._store(cache, key, result, freshness, send if not is_get else None, state)

    @staticmethod
    def _operation(headers: Headers, body: bytes, is_get: bool, scope: Scope) -> Operation | None:
        if is_get:
            if "text/html" in headers.get("accept", ""):
                return None  # the GraphiQL page, not an operation
            return parse_operation(scope["query_string"], True)
        if not headers.get("content-type", "").startswith("application/json"):
            return None
        return parse_operation(body, False)

    async def _execute(
        self, scope: Scope, headers: Headers, operation: Operation, state: dict[str, Any], send: Send
    ) -> dict[str, Any] | None:
        """Run the query on the schema. Returns the result for ``_store`` to send; sends refusals itself."""
        app_state = scope["app"].state
        try:
            result = await app_state.schema.execute(
                operation.query,
                variable_values=dict(operation.variables),  # a copy: the parsed request is memoised and shared
                context_value=http_context(app_state.services, headers, state),
                operation_name=operation.operation_name,
                allowed_operation_types=_QUERIES_ONLY,
            )
        except (InvalidOperationTypeError, CannotGetOperationTypeError, MissingQueryError) as exc:
            reason = "only queries are served" if isinstance(exc, InvalidOperationTypeError) else str(exc)
            await _send(
                send, 400, orjson.dumps({"errors": [{"message": reason, "extensions": {"code": "BAD_REQUEST"}}]})
            )
            return None
        return dict(process_result(result))

    async def _store(
        self,
        cache: AnswerCache,
        key: str,
        result: dict[str, Any],
        freshness: Freshness,
        send: Send | None,
        scope_state: dict[str, Any],
    ) -> None:
        """Keep ``result`` when it may be reused; and, for a directly executed POST, send it."""
        extensions = result.pop("extensions", None)
        stored = orjson.dumps(result)
        if send is not None:
            body = stored if not extensions else stored[:-1] + b',"extensions":' + orjson.dumps(extensions) + b"}"
            await _send(send, 200, body)
        if not freshness.cacheable or "data" not in result:
            return
        ttl = self._default_ttl_s if math.isinf(freshness.ttl_left) else freshness.ttl_left
        codes = ((error.get("extensions") or {}).get("code") for error in result.get("errors") or [])
        if ttl <= 0 or any(code not in _CACHEABLE_ERRORS for code in codes):
            return
        now = self._clock()
        payload: dict[str, Any] = {"body": stored.decode(), "answered": bool(freshness.ages), "expires": now + ttl}
        state = request.current()
        if state is not None and state.operation is not None:  # for the metrics and log line of each hit
            errors = result.get("errors") or []
            error_codes = [(error.get("extensions") or {}).get("code") for error in errors]
            payload["operation"] = {"name": state.operation, "outcome": state.outcome, "codes": error_codes}
        # Stored as born when its oldest answer was, so a hit reports the age of the data, not of the entry.
        await cache.set(key, Entry("ok", payload, now - freshness.age_s), ttl)
        scope_state[EXPIRES_AT] = now + ttl


def _parsed(body: bytes) -> dict[str, Any] | None:
    try:
        result = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return result if isinstance(result, dict) else None


class _Capture:
    """Passes the response through unchanged and keeps a copy of a small, unstreamed body."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.status = 0
        self.streamed = False
        self._chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self._chunks.append(message.get("body", b""))
            self.streamed |= bool(message.get("more_body"))
        await self._send(message)

    @property
    def body(self) -> bytes:
        return b"".join(self._chunks)


async def _send_hit(send: Send, entry: Entry, now: float) -> None:
    body = entry.payload["body"].encode()
    if entry.payload.get("answered"):
        age = math.floor(max(0.0, now - entry.stored_at))
        body = body[:-1] + b',"extensions":{"cacheAge":%d}}' % age
    await _send(send, 200, body, (b"x-response-cache", b"hit"))


async def _send(send: Send, status: int, body: bytes, extra: tuple[bytes, bytes] | None = None) -> None:
    headers = [_JSON, (b"content-length", b"%d" % len(body))]
    if extra is not None:
        headers.append(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
