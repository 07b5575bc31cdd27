"""Whole-response cache in front of Strawberry: a hit skips parsing, validation and execution.

Pure ASGI, behind the guard (so only authorised callers reach it). The key is the operation as the caller
sent it (document with insignificant whitespace, commas and comments folded, operation name, variables with
sorted keys) plus who asks (a hash of the merchant token and of the caller's API key): tenants never share.
Only queries whose every answer may be reused are stored, for the shortest lifetime left among them; a
response carrying any error other than a (cacheable) Alipay business error is not stored.
``Cache-Control: no-cache`` skips the lookup; the fresh response then replaces the stored one.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graph.cache import AnswerCache, Entry
from graph.freshness import Freshness
from graph.guard import TOKEN_HEADER

KEY_PREFIX = "response:"
# Until when (epoch seconds) the response just sent may be reused, left in the request's scope state for the
# persisted-query layer's Cache-Control (graph.persisted); absent when it may not be.
EXPIRES_AT = "response_expires_at"
_CACHEABLE_ERRORS = {"ALIPAY_BUSINESS_ERROR"}
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


def no_cache(cache_control: str) -> bool:
    """``no-cache`` (or ``max-age=0``, what browsers send on reload): skip cached answers and refresh them."""
    for part in cache_control.lower().split(","):
        name, _, value = part.strip().partition("=")
        if name == "no-cache" or (name == "max-age" and value.strip() == "0"):
            return True
    return False


@functools.lru_cache(maxsize=4096)
def request_key(payload: bytes, is_get: bool, token: str | None, authorization: str | None) -> str | None:
    """The cache key of one request (None: not a plain query we may answer). Memoised on the raw bytes: clients
    send the same request over and over, and then the whole parse-normalise-hash costs one dict lookup."""
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
    if not isinstance(request, dict):
        return None
    query, variables, name = request.get("query"), request.get("variables"), request.get("operationName")
    if not isinstance(query, str) or not isinstance(variables, dict | None) or not isinstance(name, str | None):
        return None
    if request.get("extensions"):
        return None  # persisted queries and other protocols are not ours to short-cut here
    try:
        variables_text = orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError:
        return None
    ident = "\x00".join((normalise(query), name or "", variables_text, _digest(token), _digest(authorization)))
    return KEY_PREFIX + hashlib.sha256(ident.encode()).hexdigest()


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
        body = await _read_body(receive) if scope["method"] == "POST" else b""
        key = self._key(scope, headers, body)
        if key is None:  # not a single JSON query we understand: Strawberry answers it as usual
            await self.app(scope, _replay(body, receive), send)
            return
        cache: AnswerCache = scope["app"].state.services.responses
        fresh = no_cache(headers.get("cache-control", ""))
        if not fresh:
            entry = await cache.get(key)
            if entry is not None:
                scope.setdefault("state", {})[EXPIRES_AT] = entry.payload.get("expires")
                await _send_hit(send, entry, self._clock())
                return
        freshness = Freshness()
        scope.setdefault("state", {})["freshness"] = freshness
        captured = _Capture(send)
        await self.app(scope, _replay(body, receive), captured)
        await self._store(cache, key, captured, freshness, scope["state"])

    def _key(self, scope: Scope, headers: Headers, body: bytes) -> str | None:
        if scope["method"] == "GET":
            if "text/html" in headers.get("accept", ""):
                return None  # the GraphiQL page, not an operation
            payload, is_get = scope["query_string"], True
        elif headers.get("content-type", "").startswith("application/json"):
            payload, is_get = body, False
        else:
            return None
        return request_key(payload, is_get, headers.get(TOKEN_HEADER), headers.get("authorization"))

    async def _store(
        self, cache: AnswerCache, key: str, captured: _Capture, freshness: Freshness, state: dict[str, Any]
    ) -> None:
        if captured.status != 200 or not freshness.cacheable or captured.streamed:
            return
        ttl = self._default_ttl_s if math.isinf(freshness.ttl_left) else freshness.ttl_left
        if ttl <= 0:
            return
        try:
            result = orjson.loads(captured.body)
        except orjson.JSONDecodeError:
            return
        if not isinstance(result, dict) or "data" not in result:
            return
        errors = result.get("errors") or []
        if any((error.get("extensions") or {}).get("code") not in _CACHEABLE_ERRORS for error in errors):
            return
        result.pop("extensions", None)
        now = self._clock()
        stored = {"body": orjson.dumps(result).decode(), "answered": bool(freshness.ages), "expires": now + ttl}
        # Stored as born when its oldest answer was, so a hit reports the age of the data, not of the entry.
        await cache.set(key, Entry("ok", stored, now - freshness.age_s), ttl)
        state[EXPIRES_AT] = now + ttl


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


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # a disconnect: what arrived is replayed and the app sees the end of the body
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, then the real channel (which reports a disconnect when it happens)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _send_hit(send: Send, entry: Entry, now: float) -> None:
    body = entry.payload["body"].encode()
    if entry.payload.get("answered"):
        age = math.floor(max(0.0, now - entry.stored_at))
        body = body[:-1] + b',"extensions":{"cacheAge":%d}}' % age
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-response-cache", b"hit"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
