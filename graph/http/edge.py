"""``/graphql``: one pipeline, top to bottom, for every GraphQL-over-HTTP request.

    method → GraphiQL page? → access (key, token, rate) → Accept → body, read once and bounded → one parse into a
    ``GraphQLRequest`` → persisted query resolved → response cache → execute → one write

Each step reads the one request object the parse made, so the cache key and the execution cannot disagree about
what was asked. Refusals are JSON errors with ``extensions.code``, in the media type the caller accepts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import orjson
from redis.asyncio import Redis
from starlette.types import Receive, Scope, Send
from strawberry.schema.base import BaseSchema

from graph.config import Settings
from graph.data.freshness import Freshness, no_cache
from graph.data.responses import CachedResponse
from graph.http import request as parsing
from graph.http.access import TOKEN_HEADER, Access, Caller, Refusal
from graph.http.execute import Executed, execute
from graph.http.persisted import PersistedQueries, PersistedQueryRefusal, Resolved
from graph.http.request import GraphQLRequest, MediaType, RequestError
from graph.http.response_cache import entry_for, response_key
from graph.http.wire import (
    Disconnected,
    content_type,
    matches,
    not_modified,
    read_body,
    refuse,
    send_page,
    weak_etag,
    write,
)
from graph.ide.page import Page
from graph.observability import request_state
from graph.observability.telemetry import Telemetry
from graph.services import Services
from resolvers.context import Context, build_context

_ALLOWED = b"GET, POST"
_VARY = (b"vary", b"Accept, Authorization, X-Alipay-App-Auth-Token")
_NO_STORE = (b"cache-control", b"no-store")
_HIT = (b"x-response-cache", b"hit")
_TOKEN = TOKEN_HEADER.encode()


class GraphQLEdge:
    def __init__(
        self,
        schema: BaseSchema,
        settings: Settings,
        telemetry: Telemetry,
        *,
        page: Page | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._schema = schema
        self._settings = settings
        self._telemetry = telemetry
        self._page = page
        self._clock = clock
        self._access = self._limits(None)
        self._services: Services | None = None
        self._persisted: PersistedQueries | None = None

    def start(self, services: Services) -> None:
        """Hand the edge what the lifespan built (the caches and the gateway client exist only while it runs)."""
        self._services = services
        self._access = self._limits(services.redis)  # shared by the fleet when the cache is Redis
        self._persisted = PersistedQueries(
            services.documents,
            mode=self._settings.persisted_queries,
            manifest=self._settings.operations,
            ttl_s=self._settings.apq_ttl_s,
            max_document_bytes=self._settings.apq_max_document_bytes,
        )

    def _limits(self, redis: Redis | None) -> Access:
        settings = self._settings
        return Access(
            api_keys=settings.api_keys,
            allow_anonymous=settings.allow_anonymous,
            per_minute=settings.rate_limit_per_min,
            failures_per_minute=settings.auth_failures_per_min,
            redis=redis,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(reversed(scope["headers"]))  # the first of a repeated header, as Starlette reads them
        try:
            await self._answer(scope, receive, send, headers)
        except RequestError as exc:
            media = parsing.negotiate(_text(headers.get(b"accept"))) or parsing.JSON
            extra = [(name.encode(), value.encode()) for name, value in exc.headers.items()]
            await refuse(send, exc.status, exc.message, exc.code, media, extra)
        except Disconnected:
            return

    async def _answer(self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes]) -> None:
        method = scope["method"]
        if method not in ("GET", "POST"):
            raise RequestError(405, "/graphql takes GET and POST", {"allow": _ALLOWED.decode()})
        accept = _text(headers.get(b"accept"))
        if method == "GET" and _navigation(accept, scope["query_string"]):
            if self._page is None:
                raise RequestError(404, "the GraphiQL playground is off (GRAPH_GRAPHIQL=false)", code="NOT_FOUND")
            await send_page(send, self._page)  # public: nothing secret in GraphiQL; the operations it sends are not
            return
        caller = await self._access.check(
            _text(headers.get(b"authorization")), _text(headers.get(_TOKEN)), scope.get("client")
        )
        if isinstance(caller, Refusal):
            extra = [(name.encode(), value.encode()) for name, value in caller.headers]
            await refuse(send, caller.status, caller.message, caller.code, parsing.JSON, extra)
            return
        media = parsing.negotiate(accept)
        if media is None:
            raise RequestError(406, "send Accept: application/graphql-response+json or application/json")
        if method == "GET":
            request = parsing.parse_get(scope["query_string"], media)
        else:
            if not parsing.is_json_content_type(_text(headers.get(b"content-type"))):
                raise RequestError(415, "unsupported content type: send application/json (or GET with ?query=)")
            body = await read_body(receive, headers.get(b"content-length"), self._settings.max_body_bytes)
            value = parsing.parse_post_body(body)
            if isinstance(value, list):
                await self._batch(send, value, media, caller, headers)
                return
            request = parsing.from_json_object(value, media)
        await self._operation(send, request, caller, headers)

    async def _operation(
        self, send: Send, request: GraphQLRequest, caller: Caller, headers: dict[bytes, bytes]
    ) -> None:
        services, persisted = self._running()
        state = request_state.current()
        try:
            resolved = await persisted.resolve(request)
        except PersistedQueryRefusal as refusal:
            _note_persisted(state, "miss" if refusal.code == "PERSISTED_QUERY_NOT_FOUND" else "refused")
            extra = [] if refusal.cache_control is None else [(b"cache-control", refusal.cache_control.encode())]
            await refuse(send, refusal.status, refusal.message, refusal.code, request.media_type, extra)
            return
        request = resolved.request
        is_get = request.method == "GET"
        key = response_key(request, caller) if request.query else None
        fresh = no_cache(_text(headers.get(b"cache-control")) or "")
        if key is not None and not fresh:
            started = time.perf_counter()
            hit = await self._lookup(services, key)
            if state is not None:
                state.response_cache = "miss" if hit is None else "hit"
            if hit is not None:
                await _settle_persisted(persisted, resolved, state, ran=True)  # it ran: that is how it was kept
                await self._send_hit(send, hit, is_get, headers, request.media_type)
                self._telemetry.operation(hit.operation, hit.outcome, time.perf_counter() - started, hit.codes)
                return
        freshness = Freshness()
        executed = await execute(self._schema, request, _context(services, caller, state, fresh, freshness))
        await _settle_persisted(persisted, resolved, state, ran=not executed.before_execution)
        stored = None
        if key is not None and not executed.before_execution:
            stored = await self._store(services, key, executed, freshness, state)
        await self._send_executed(send, executed, request, stored, headers)

    async def _lookup(self, services: Services, key: str) -> CachedResponse | None:
        tracing = self._telemetry.tracing
        if not tracing.active:  # the hit path: no span object at all without a tracer
            hit = await services.responses.get(key, usable=self._live)
            return hit if hit is not None and self._live(hit) else None
        with tracing.span("cache.get", {"cache.name": "response", "cache.backend": services.responses.name}) as span:
            hit = await services.responses.get(key, usable=self._live)
            hit = hit if hit is not None and self._live(hit) else None
            span.set("cache.hit", hit is not None)
        return hit

    def _live(self, entry: CachedResponse) -> bool:
        # Redis keeps its own TTL, but a value written back after its time (a replay by whoever can write to that
        # Redis: sealed, so genuine, yet old) must not serve as current: the entry's own expiry decides.
        return entry.expires > self._clock()

    async def _store(
        self,
        services: Services,
        key: str,
        executed: Executed,
        freshness: Freshness,
        state: request_state.RequestState | None,
    ) -> CachedResponse | None:
        """Keep the answer when every part of it may be reused; the entry, or None."""
        kept = entry_for(executed, freshness, state, default_ttl_s=self._settings.cache_ttl_s, now=self._clock())
        if kept is not None:
            await services.responses.set(key, *kept)
        return None if kept is None else kept[0]

    async def _send_hit(
        self, send: Send, hit: CachedResponse, is_get: bool, headers: dict[bytes, bytes], media: MediaType
    ) -> None:
        now = self._clock()
        extra = [_HIT]
        if is_get:
            validators, held = self._validators(hit, headers)
            extra += validators
            if held:
                await not_modified(send, extra)
                return
        body = hit.body
        if hit.answered:
            body = body[:-1] + b',"extensions":{"cacheAge":%d}}' % math.floor(max(0.0, now - hit.born))
        await write(send, 200, body, content_type(media), extra)

    async def _send_executed(
        self,
        send: Send,
        executed: Executed,
        request: GraphQLRequest,
        stored: CachedResponse | None,
        headers: dict[bytes, bytes],
    ) -> None:
        media = request.media_type
        status = 400 if executed.before_execution and media == parsing.GRAPHQL_RESPONSE_JSON else 200
        extra: list[tuple[bytes, bytes]] = []
        if request.method == "GET":
            if stored is None:
                extra += [_NO_STORE, _VARY]
            else:
                # A revalidation: fetch() sends no-cache with If-None-Match, so the answer was refreshed; if it
                # is what the caller holds, say so without the body.
                extra, held = self._validators(stored, headers)
                if held:
                    await not_modified(send, extra)
                    return
        if stored is None:
            body = orjson.dumps(executed.result)
        else:  # the stored body is the answer without its extensions: encoded once
            extensions = executed.result.get("extensions")
            body = (
                stored.body
                if not extensions
                else stored.body[:-1] + b',"extensions":' + orjson.dumps(extensions) + b"}"
            )
        await write(send, status, body, content_type(media), extra)

    def _validators(self, entry: CachedResponse, headers: dict[bytes, bytes]) -> tuple[list[tuple[bytes, bytes]], bool]:
        """A reusable GET answer's headers (how long it may be reused, on what it varies, its weak ETag), and
        whether the caller already holds it (``If-None-Match``)."""
        etag = weak_etag(entry.body)
        max_age = max(0, math.floor(entry.expires - self._clock()))
        validators = [(b"cache-control", b"private, max-age=%d" % max_age), _VARY, (b"etag", etag)]
        return validators, matches(_text(headers.get(b"if-none-match")), etag)

    async def _batch(
        self,
        send: Send,
        items: list[object],
        media: MediaType,
        caller: Caller,
        headers: dict[bytes, bytes],
    ) -> None:
        """A JSON array of operations (GRAPH_ALLOW_BATCHING): each run once, none cached, one shared budget."""
        settings = self._settings
        services, persisted = self._running()
        try:
            persisted.refuse_batch()  # under a safelist a batch is refused as such, whatever it holds
        except PersistedQueryRefusal as refusal:
            await refuse(send, refusal.status, refusal.message, refusal.code, media)
            return
        if not settings.allow_batching:
            raise RequestError(
                400, "batched operations (a JSON array) are off; set GRAPH_ALLOW_BATCHING=true to allow them"
            )
        if not items or len(items) > settings.max_batch_operations:
            raise RequestError(
                400, f"a batch holds 1 to {settings.max_batch_operations} operations (GRAPH_MAX_BATCH_OPERATIONS)"
            )
        requests = [parsing.from_json_object(item, media) for item in items]
        state = request_state.current()
        try:
            resolved: list[Resolved] = [await persisted.resolve(request) for request in requests]
        except PersistedQueryRefusal as refusal:
            await refuse(send, refusal.status, refusal.message, refusal.code, media)
            return
        context = _context(services, caller, state, no_cache(_text(headers.get(b"cache-control")) or ""), Freshness())
        results = []
        for item in resolved:
            try:
                results.append((await execute(self._schema, item.request, context)).result)
            except RequestError as exc:
                results.append({"errors": [{"message": exc.message, "extensions": {"code": "BAD_REQUEST"}}]})
        await write(send, 200, orjson.dumps(results), content_type(media))

    def _running(self) -> tuple[Services, PersistedQueries]:
        if self._services is None or self._persisted is None:
            raise RuntimeError("the edge was not started: serve the app with its lifespan")
        return self._services, self._persisted


def _context(
    services: Services,
    caller: Caller,
    state: request_state.RequestState | None,
    fresh: bool,
    freshness: Freshness,
) -> Context:
    """What the resolvers of one request (or one batch) get: the caller's merchant token, the request id."""
    request_id = state.request_id if state is not None else "-"
    return build_context(
        services, app_auth_token=caller.app_auth_token, request_id=request_id, fresh=fresh, freshness=freshness
    )


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def _navigation(accept: str | None, query_string: bytes) -> bool:
    """A browser opening the playground: it asks for HTML and sends no GraphQL parameters."""
    if accept is None or "text/html" not in accept:
        return False
    return not any(pair.partition(b"=")[0] in (b"query", b"extensions") for pair in query_string.split(b"&") if pair)


async def _settle_persisted(
    persisted: PersistedQueries, resolved: Resolved, state: request_state.RequestState | None, *, ran: bool
) -> None:
    """Register a document sent with its hash once it ran (before the answer goes out: the next hash-only request
    finds it), and say in the log line what became of a persisted query."""
    query = resolved.request.query
    if resolved.register is not None and ran and query:
        await persisted.register(resolved.register, query)
        _note_persisted(state, "registered")
    elif resolved.persisted:
        _note_persisted(state, "hit")


def _note_persisted(state: request_state.RequestState | None, what: str) -> None:
    if state is not None:
        state.persisted_query = what
