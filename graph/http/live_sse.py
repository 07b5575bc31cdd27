"""GraphQL over Server-Sent Events (the graphql-sse protocol's "distinct connections" mode): a ``GET`` or ``POST``
on ``/graphql`` with ``Accept: text/event-stream`` holds one operation; each result is an ``event: next``, the
end an ``event: complete``.

    curl -N -H 'Accept: text/event-stream' -H 'Content-Type: application/json' \\
         -d '{"query": "subscription { miniAppVersionChanged(appVersion: \\"0.0.1\\") { __typename } }"}' .../graphql

The edge has let the caller in (API key, merchant token, rate limit) before this runs. What is refused before the
stream starts is an ordinary JSON answer: 400 for a request that is not an operation or does not validate, 429
over ``GRAPH_LIVE_MAX_CONNECTIONS_PER_KEY`` or ``GRAPH_LIVE_MAX_PER_KEY``. A comment line every GRAPH_LIVE_PING_S
keeps proxies from timing the stream out; after GRAPH_LIVE_MAX_LIFETIME_S it ends without ``complete`` (a client
reconnects and gets the current state first).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

import orjson
from starlette.types import Receive, Scope, Send

from graph.http import request as parsing
from graph.http.access import Caller
from graph.http.live import TOO_MANY, LiveOperations, Refused, Result
from graph.http.request import RequestError
from graph.http.wire import Disconnected, read_body, refuse

EVENT_STREAM = "text/event-stream"
_HEAD = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx: pass each event on as it comes
]
_COMPLETE = b"event: complete\n\n"
_KEEP_ALIVE = b":\n\n"


def wants_events(accept: str | None) -> bool:
    return accept is not None and EVENT_STREAM in accept


class SseEndpoint:
    def __init__(self, live: LiveOperations) -> None:
        self.live = live

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, caller: Caller, headers: dict[bytes, bytes]
    ) -> None:
        if scope["method"] == "GET":
            request = parsing.parse_get(scope["query_string"], parsing.JSON)
        else:
            if not parsing.is_json_content_type(_text(headers.get(b"content-type"))):
                raise RequestError(415, "unsupported content type: send application/json (or GET with ?query=)")
            body = await read_body(receive, headers.get(b"content-length"), self.live.settings.max_body_bytes)
            request = parsing.from_json_object(parsing.parse_post_body(body), parsing.JSON)
        holder = self.live.holder(caller, scope.get("client"))
        with self.live.connection(holder) as admitted:
            if not admitted:
                refusal = self.live.connection_refusal()
                await refuse(send, 429, refusal.message, refusal.code, parsing.JSON)
                return
            results = self.live.stream(request, caller, holder)
            async with contextlib.aclosing(results):
                try:
                    first = await anext(results, None)
                except Refused as refused:
                    status = 429 if refused.code == TOO_MANY else 400
                    await refuse(send, status, refused.message, refused.code, parsing.JSON)
                    return
                if first is not None and first.before_execution:
                    await _json(send, 400, first)
                    return
                await send({"type": "http.response.start", "status": 200, "headers": _HEAD})
                await self._events(first, results, receive, send)

    async def _events(
        self, first: Result | None, results: AsyncGenerator[Result, None], receive: Receive, send: Send
    ) -> None:
        settings = self.live.settings
        loop = asyncio.get_running_loop()

        async def produce() -> None:
            result = first
            while result is not None:
                await send({"type": "http.response.body", "body": _event(result), "more_body": True})
                result = await anext(results, None)
            await send({"type": "http.response.body", "body": _COMPLETE, "more_body": True})

        async def gone() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        producer, watcher = loop.create_task(produce()), loop.create_task(gone())
        ends = loop.time() + settings.live_max_lifetime_s
        try:
            while loop.time() < ends:
                done, _ = await asyncio.wait(
                    {producer, watcher},
                    timeout=min(settings.live_ping_s, ends - loop.time()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if done:
                    break
                await send({"type": "http.response.body", "body": _KEEP_ALIVE, "more_body": True})
        finally:
            for task in (producer, watcher):
                task.cancel()
            await asyncio.gather(producer, watcher, return_exceptions=True)
        with contextlib.suppress(OSError, Disconnected):
            await send({"type": "http.response.body", "body": b"", "more_body": False})


def _event(result: Result) -> bytes:
    return b"event: next\ndata: " + orjson.dumps(result.payload) + b"\n\n"


async def _json(send: Send, status: int, result: Result) -> None:
    body = orjson.dumps(result.payload)
    head = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")
