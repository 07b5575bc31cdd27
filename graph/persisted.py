"""Persisted queries: Apollo's APQ protocol, the safelist, and HTTP caching of hash-only GETs.

Pure ASGI, after the guard (only authorised callers get here) and before the response cache. A request carrying
``extensions.persistedQuery {version: 1, sha256Hash}`` is rewritten into the ordinary operation it stands for
(the JSON body or the query string), so the response cache and Strawberry see a plain request and a hash-only
request for a stored response is a response-cache hit.

- ``apq``: a known hash runs its document; an unknown one answers ``PersistedQueryNotFound`` (HTTP 200, as Apollo
  Server does; Apollo Client then sends the text with the hash). Text with a hash must hash to it
  (``BAD_USER_INPUT`` otherwise) and is registered once it has run. Ids from ``GRAPH_OPERATIONS_FILE``, if given,
  are known from the start.
- ``safelist``: only the manifest's operations run, by id or by the same text (up to what GraphQL ignores:
  white space, commas, comments); anything else is ``PERSISTED_QUERY_NOT_ALLOWED`` (403) before it is parsed.
- ``off``: a request with the extension answers ``PersistedQueryNotSupported``; Apollo Client then stops hashing.

Answers to a GET with a hash carry ``Cache-Control: private, max-age=N`` (N: how long the response cache may
still reuse the response, i.e. the shortest lifetime of the answers inside) and a weak ``ETag``, or ``no-store``
when they may not be reused; ``If-None-Match`` with that ETag gets a 304 without a body.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graph import request
from graph.asgi_body import read_body, replay
from graph.cache import AnswerCache, Entry
from graph.manifest import Manifest
from graph.response_cache import EXPIRES_AT, normalise

log = logging.getLogger("graph.persisted")

DOCUMENT_PREFIX = "apq:"
RECENT_DOCUMENTS = 256
_HASH = re.compile(r"[0-9a-f]{64}")
# The cheap test: a request without these bytes is not ours to touch. Apollo Client 4 names itself in
# ``extensions.clientLibrary`` on every request; nothing here reads it, and any extension keeps the response cache
# out (it cannot know what an extension changes), so it is dropped.
_MARKS = (b"persistedQuery", b"clientLibrary")
_DROPPED = ("persistedQuery", "clientLibrary")
# What a hit or a fresh answer appends and what changes every second; the ETag ignores it (a weak validator:
# same data, same tag).
_CACHE_AGE = re.compile(rb',"extensions":\{"cacheAge":\d+\}\}$')
_VARY = b"Authorization, X-Alipay-App-Auth-Token"


@dataclass(frozen=True, slots=True)
class _Plan:
    fields: dict[str, Any]  # the request to pass on: query, variables (a JSON string on a GET), operationName...
    register: str | None  # register fields["query"] under this hash once it has run
    persisted: bool  # the request used a persisted query (its GET answer is made cacheable)


class _Refusal(Exception):
    def __init__(self, status: int, message: str, code: str, cache_control: bytes | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.cache_control = status, message, code, cache_control


def _not_found() -> _Refusal:
    # Apollo Client retries on this message or code, with HTTP 200 as Apollo Server sends it; never cached.
    return _Refusal(200, "PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND", b"private, no-cache, must-revalidate")


def _not_allowed(what: str) -> _Refusal:
    return _Refusal(403, f"{what} is not in the list of allowed operations", "PERSISTED_QUERY_NOT_ALLOWED")


def _bad(message: str) -> _Refusal:
    return _Refusal(400, message, "BAD_USER_INPUT")


class PersistedQueries:
    def __init__(
        self,
        app: ASGIApp,
        *,
        mode: str,
        manifest: Manifest | None = None,
        ttl_s: float = 86400.0,
        graphql_path: str = "/graphql",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self._mode = mode
        self._ttl_s = ttl_s
        self._path = graphql_path
        self._clock = clock
        operations = manifest.operations if manifest is not None else ()
        self._by_id: Mapping[str, str] = {operation.id: operation.body for operation in operations}
        self._listed = frozenset(normalise(operation.body) for operation in operations)
        self._recent: dict[str, str] = {}  # digest -> text, the last RECENT_DOCUMENTS read from Redis

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self._path or scope["method"] not in ("GET", "POST"):
            await self.app(scope, receive, send)
            return
        is_get = scope["method"] == "GET"
        body = b"" if is_get else await read_body(receive)
        raw = scope["query_string"] if is_get else body
        if self._mode != "safelist" and not any(mark in raw for mark in _MARKS):
            await self.app(scope, replay(body, receive), send)
            return
        headers = Headers(scope=scope)
        try:
            plan = await self._plan(scope, _parse(scope, headers, body))
        except _Refusal as refusal:
            _note("miss" if refusal.code == "PERSISTED_QUERY_NOT_FOUND" else "refused")
            await _respond(send, refusal)
            return
        if plan is None:  # nothing to change, and allowed as it is
            await self.app(scope, replay(body, receive), send)
            return
        state = scope.setdefault("state", {})
        inner = dict(scope)
        if is_get:
            inner["query_string"] = _query_string(plan.fields)
        else:
            body = orjson.dumps(plan.fields)
            inner["headers"] = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
            inner["headers"].append((b"content-length", str(len(body)).encode()))
        if not plan.persisted:  # only dropped extensions that would keep the response cache out
            await self.app(inner, replay(body, receive), send)
            return
        response = _Buffered(send)
        await self.app(inner, replay(body, receive), response)
        if plan.register is None:
            _note("hit")
        elif response.executed():
            # Stored before the answer goes out, so a hash-only request sent right after it finds the text.
            cache: AnswerCache = scope["app"].state.services.documents
            entry = Entry("ok", {"query": plan.fields["query"]}, self._clock())
            await cache.set(DOCUMENT_PREFIX + plan.register, entry, self._ttl_s)
            _note("registered")
        if is_get and response.status == 200 and not response.passed_on:
            await self._send_cacheable(response, state, headers)
        else:
            await response.flush()

    async def _plan(self, scope: Scope, request: dict[str, Any] | None) -> _Plan | None:
        """What to pass on instead of the request, or None to pass it on as it is; refusals raise."""
        if request is None:  # not a single JSON operation: only Strawberry's error answers may come of it
            if self._mode == "safelist":
                raise _not_allowed("a request that is not a single JSON operation")
            return None
        extensions = request.get("extensions")
        extensions = extensions if isinstance(extensions, dict) else {}
        query = request.get("query")
        if query is not None and not isinstance(query, str):
            raise _bad("'query' must be a string")
        persisted = extensions.get("persistedQuery")
        register = None
        if persisted is not None:
            query, register = await self._document(scope, persisted, query)
        elif self._mode == "safelist" and query is not None and normalise(query) not in self._listed:
            raise _not_allowed("this operation")
        rest = {k: v for k, v in extensions.items() if k not in _DROPPED}
        if persisted is None and len(rest) == len(extensions):
            return None
        fields = {k: v for k, v in request.items() if k != "extensions"}
        if query is not None:
            fields["query"] = query
        if rest:
            fields["extensions"] = rest
        return _Plan(fields, register, persisted is not None)

    async def _document(self, scope: Scope, persisted: Any, query: str | None) -> tuple[str, str | None]:
        """The text a persisted query stands for, and the hash to register it under once it ran (or None)."""
        if self._mode == "off":
            raise _Refusal(200, "PersistedQueryNotSupported", "PERSISTED_QUERY_NOT_SUPPORTED", b"private, no-cache")
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            raise _bad("persistedQuery: only version 1 is supported")
        given = persisted.get("sha256Hash")
        if not isinstance(given, str) or not given:
            raise _bad("persistedQuery.sha256Hash must be a string")
        listed = self._by_id.get(given)
        if listed is not None:
            if query is not None and normalise(query) != normalise(listed):
                raise _bad("the query is not the operation listed with this id")
            return listed, None
        if self._mode == "safelist":
            raise _not_allowed(f"the operation with id {given[:64]!r}")
        digest = given.lower()
        if not _HASH.fullmatch(digest):
            raise _bad("persistedQuery.sha256Hash must be 64 hexadecimal digits")
        if query is not None:
            if hashlib.sha256(query.encode()).hexdigest() != digest:
                raise _bad("provided sha does not match query")
            return query, digest
        text = self._recent.get(digest)
        if text is not None:
            return text, None
        cache: AnswerCache = scope["app"].state.services.documents
        entry = await cache.get(DOCUMENT_PREFIX + digest)
        text = entry.payload.get("query") if entry is not None else None
        if not isinstance(text, str):
            raise _not_found()
        if cache.name == "redis":
            self._remember(digest, text)
        return text, None

    def _remember(self, digest: str, text: str) -> None:
        # A document never changes under its hash, so a local copy is always right: hash-only requests for the hot
        # operations then cost no Redis round trip. (The memory store is local already.)
        self._recent[digest] = text
        if len(self._recent) > RECENT_DOCUMENTS:
            del self._recent[next(iter(self._recent))]

    async def _send_cacheable(self, response: _Buffered, state: dict[str, Any], request: Headers) -> None:
        expires = state.get(EXPIRES_AT)
        max_age = math.floor(expires - self._clock()) if isinstance(expires, int | float) else 0
        if max_age <= 0:
            response.headers.append((b"cache-control", b"no-store"))
            await response.flush()
            return
        etag = b'W/"' + hashlib.sha256(_CACHE_AGE.sub(b"}", response.body)).hexdigest()[:32].encode() + b'"'
        response.headers += [
            (b"cache-control", b"private, max-age=%d" % max_age),
            (b"etag", etag),
            (b"vary", _VARY),
        ]
        if _matches(request.get("if-none-match", ""), etag.decode()):
            await response.not_modified()
        else:
            await response.flush()


def _parse(scope: Scope, headers: Headers, body: bytes) -> dict[str, Any] | None:
    """The request's fields (``variables`` left as sent on a GET), or None when it is not one JSON operation."""
    try:
        if scope["method"] == "GET":
            fields: Any = dict(_query_pairs(scope["query_string"]))
            if "extensions" in fields:
                fields["extensions"] = orjson.loads(fields["extensions"]) if fields["extensions"] else None
        elif headers.get("content-type", "").split(";")[0].strip().lower() == "application/json":
            fields = orjson.loads(body)
        else:
            return None
    except (orjson.JSONDecodeError, UnicodeDecodeError):
        return None
    return fields if isinstance(fields, dict) else None


@functools.lru_cache(maxsize=512)
def _query_pairs(raw: bytes) -> tuple[tuple[str, str], ...]:
    """A GET's parameters, memoised on the raw string: clients repeat the same hash-only URL over and over."""
    return tuple(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))


def _query_string(fields: dict[str, Any]) -> bytes:
    # Sorted: the same request always makes the same string (the response cache memoises its key on it).
    pairs = sorted(
        (name, value if isinstance(value, str) else orjson.dumps(value).decode()) for name, value in fields.items()
    )
    return _urlencode(tuple(pairs))


@functools.lru_cache(maxsize=256)
def _urlencode(pairs: tuple[tuple[str, str], ...]) -> bytes:
    # Percent-encoding a 1 KB document costs ~0.1 ms in urllib, a fifth of a response-cache hit: memoised.
    return urlencode(pairs).encode()


def _matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison (RFC 9110 13.1.2): ``W/`` prefixes ignored; ``*`` matches anything."""
    opaque = etag.removeprefix("W/")
    return any(tag.strip() == "*" or tag.strip().removeprefix("W/") == opaque for tag in if_none_match.split(","))


class _Buffered:
    """Holds the downstream response until it is complete, so headers can be added once caching is decided.

    A response that is not JSON (a multipart or event stream) is passed straight on instead, as it comes.
    """

    def __init__(self, send: Send) -> None:
        self._send = send
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.passed_on = False
        self._chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = list(message.get("headers", []))
            content_type = dict(self.headers).get(b"content-type", b"application/json")
            self.passed_on = not content_type.startswith(b"application/")
        elif message["type"] == "http.response.body" and not self.passed_on:
            self._chunks.append(message.get("body", b""))
            return
        if self.passed_on:
            await self._send(message)

    @property
    def body(self) -> bytes:
        return b"".join(self._chunks)

    def executed(self) -> bool:
        """The operation ran (parse and validation passed): a 200 whose ``data`` is not null."""
        if self.status != 200 or self.passed_on:
            return False
        try:
            result = orjson.loads(self.body)
        except orjson.JSONDecodeError:  # pragma: no cover  (Strawberry's JSON answers are JSON)
            return False
        return isinstance(result, dict) and result.get("data") is not None

    async def flush(self) -> None:
        if self.passed_on:
            return
        await self._send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await self._send({"type": "http.response.body", "body": self.body})

    async def not_modified(self) -> None:
        dropped = (b"content-length", b"content-type")
        headers = [(k, v) for k, v in self.headers if k.lower() not in dropped]
        await self._send({"type": "http.response.start", "status": 304, "headers": headers})
        await self._send({"type": "http.response.body", "body": b""})


def _note(outcome: str) -> None:
    """What became of the request's persisted query, for its log line."""
    state = request.current()
    if state is not None:
        state.persisted_query = outcome


async def _respond(send: Send, refusal: _Refusal) -> None:
    body = orjson.dumps({"errors": [{"message": refusal.message, "extensions": {"code": refusal.code}}]})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if refusal.cache_control is not None:
        headers.append((b"cache-control", refusal.cache_control))
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
