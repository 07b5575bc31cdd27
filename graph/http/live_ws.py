"""graphql-transport-ws on ``/graphql`` (the protocol of the ``graphql-ws`` library: GraphiQL, Apollo Client, urql).

    connection_init (within GRAPH_LIVE_INIT_TIMEOUT_S) → connection_ack → subscribe → next … → complete

Refusals are the protocol's close codes: 4400 a malformed message, 4401 ``subscribe`` before the ack, 4403 the
``connection_init`` refused (no or unknown API key, a closed service), 4408 no ``connection_init`` in time, 4409 an
id already in use, 4429 a second ``connection_init`` (and, with a reason saying so, too many connections or refused
keys for one key or address). A subscription over a limit gets an ``error`` message with ``extensions.code``.
Every message is a TEXT frame, as the protocol requires. The server pings every GRAPH_LIVE_PING_S and closes (1001)
a connection that sent nothing back since the last ping, and any connection after GRAPH_LIVE_MAX_LIFETIME_S.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from graph.http.access import TOKEN_HEADER, Caller, Refusal
from graph.http.live import LiveOperations, Refused

SUBPROTOCOL = "graphql-transport-ws"
_AUTHORIZATION = "authorization"


class Closed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason[:120]  # a close frame's reason holds at most 123 bytes


class WebSocketEndpoint:
    def __init__(self, live: LiveOperations) -> None:
        self.live = live

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":  # pragma: no cover  (the ASGI server's first message)
            return
        if SUBPROTOCOL not in scope.get("subprotocols", ()) or not self.live.running:
            await send({"type": "websocket.close", "code": 1002})  # refused handshake: the server answers 403
            return
        await send({"type": "websocket.accept", "subprotocol": SUBPROTOCOL})
        await _Connection(self.live, scope, receive, send).run()


class _Connection:
    """One WebSocket: its state, its subscriptions, and the timers that watch it."""

    def __init__(self, live: LiveOperations, scope: Scope, receive: Receive, send: Send) -> None:
        self.live = live
        self.scope = scope
        self.receive = receive
        self._send = send
        self.caller: Caller | None = None
        self.holder = ""
        self.initialised = False
        self.heard = True  # a message came since the last ping
        self.subscriptions: dict[str, asyncio.Task[None]] = {}
        self.closed = False
        self.acked = asyncio.Event()
        self.lock = asyncio.Lock()

    async def run(self) -> None:
        settings = self.live.settings
        watchdog = asyncio.get_running_loop().create_task(self._watch(settings.live_ping_s))
        try:
            async with contextlib.AsyncExitStack() as stack:
                while True:
                    message = await self.receive()
                    if message["type"] == "websocket.disconnect":
                        return
                    if self.closed:  # pragma: no cover  (sent before the client heard of the close: a race)
                        continue
                    self.heard = True
                    try:
                        await self._handle(message, stack)
                    except Closed as closed:
                        await self.close(closed.code, closed.reason)
        finally:
            watchdog.cancel()
            for task in self.subscriptions.values():
                task.cancel()

    async def _handle(self, message: Mapping[str, Any], stack: contextlib.AsyncExitStack) -> None:
        text = message.get("text")
        if text is None:
            raise Closed(4400, "graphql-transport-ws messages are text frames")
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise Closed(4400, "a message must be a JSON object") from None
        kind = parsed.get("type") if isinstance(parsed, dict) else None
        if kind == "connection_init":
            await self._init(parsed.get("payload"), stack)
        elif kind == "ping":
            await self.send({"type": "pong"})
        elif kind == "pong":
            pass
        elif kind == "subscribe":
            await self._subscribe(parsed.get("id"), parsed.get("payload"))
        elif kind == "complete":
            task = self.subscriptions.pop(parsed.get("id"), None) if isinstance(parsed.get("id"), str) else None
            if task is not None:
                task.cancel()
        else:
            raise Closed(4400, f"unknown message type {str(kind)[:40]!r}")

    async def _init(self, payload: Any, stack: contextlib.AsyncExitStack) -> None:
        if self.initialised:
            raise Closed(4429, "Too many initialisation requests")
        self.initialised = True
        if payload is not None and not isinstance(payload, dict):
            raise Closed(4400, "connection_init's payload must be an object")
        given = {str(name).lower(): value for name, value in (payload or {}).items()}
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in self.scope["headers"]}
        authorization = _text(given.get(_AUTHORIZATION), headers.get(_AUTHORIZATION))
        token = _text(given.get(TOKEN_HEADER), headers.get(TOKEN_HEADER))
        caller = await self.live.access.check(authorization, token, self.scope.get("client"))
        if isinstance(caller, Refusal):
            code = {401: 4403, 429: 4429}.get(caller.status, 4400)
            raise Closed(code, f"{'Forbidden' if code == 4403 else 'Refused'}: {caller.message}")
        holder = self.live.holder(caller, self.scope.get("client"))
        if not stack.enter_context(self.live.connection(holder)):
            raise Closed(4429, self.live.connection_refusal().message)
        self.caller, self.holder = caller, holder
        await self.send({"type": "connection_ack"})
        self.acked.set()

    async def _subscribe(self, ident: Any, payload: Any) -> None:
        if self.caller is None:
            raise Closed(4401, "Unauthorized")
        if not isinstance(ident, str) or not ident or len(ident) > 256:
            raise Closed(4400, "subscribe needs an id: a string of 1 to 256 characters")
        if ident in self.subscriptions:
            raise Closed(4409, f"Subscriber for {ident[:80]} already exists")
        try:
            request = self.live.request(payload)
            limit = self.live.settings.live_max_per_connection
            if len(self.subscriptions) >= limit:
                raise Refused(
                    f"at most {limit} subscriptions on one connection (GRAPH_LIVE_MAX_PER_CONNECTION)",
                    "TOO_MANY_SUBSCRIPTIONS",
                )
        except Refused as refused:
            await self.send({"type": "error", "id": ident, "payload": refused.errors()})
            return
        task = asyncio.get_running_loop().create_task(self._stream(ident, request, self.caller))
        self.subscriptions[ident] = task

    async def _stream(self, ident: str, request: Any, caller: Caller) -> None:
        try:
            async with contextlib.aclosing(self.live.stream(request, caller, self.holder)) as results:
                async for result in results:
                    if result.before_execution:  # a document that never ran: the protocol's error message, no complete
                        await self.send({"type": "error", "id": ident, "payload": result.payload.get("errors", [])})
                        return
                    await self.send({"type": "next", "id": ident, "payload": result.payload})
            await self.send({"type": "complete", "id": ident})
        except Refused as refused:
            await self.send({"type": "error", "id": ident, "payload": refused.errors()})
        finally:
            if self.subscriptions.get(ident) is asyncio.current_task():  # pragma: no branch  (else completed by id)
                del self.subscriptions[ident]

    async def _watch(self, ping_s: float) -> None:
        """The init deadline, then a ping every ``ping_s``; the connection's lifetime throughout."""
        settings = self.live.settings
        loop = asyncio.get_running_loop()
        ends = loop.time() + settings.live_max_lifetime_s
        try:
            async with asyncio.timeout(min(settings.live_init_timeout_s, settings.live_max_lifetime_s)):
                await self.acked.wait()
        except TimeoutError:
            await self.close(4408, "Connection initialisation timeout")
            return
        while not self.closed:  # pragma: no branch  (a closed connection's watchdog is cancelled)
            await asyncio.sleep(max(0.0, min(ping_s, ends - loop.time())))
            if loop.time() >= ends:
                await self.close(1001, "connection lifetime reached (GRAPH_LIVE_MAX_LIFETIME_S): reconnect")
                return
            if not self.heard:
                await self.close(1001, "no pong within GRAPH_LIVE_PING_S")
                return
            self.heard = False
            await self.send({"type": "ping"})

    async def send(self, message: dict[str, Any]) -> None:
        if self.closed:  # pragma: no cover  (a subscription's task between its last await and its cancellation)
            return
        async with self.lock:  # one frame at a time from the subscriptions' tasks
            with contextlib.suppress(OSError, RuntimeError):  # the peer went away meanwhile
                await self._send({"type": "websocket.send", "text": orjson.dumps(message).decode()})

    async def close(self, code: int, reason: str) -> None:
        if self.closed:  # pragma: no cover  (the watchdog and a refusal at the same moment)
            return
        self.closed = True
        for task in self.subscriptions.values():
            task.cancel()
        self.subscriptions.clear()
        with contextlib.suppress(OSError, RuntimeError):
            await self._send({"type": "websocket.close", "code": code, "reason": reason[:120]})


def _text(given: Any, header: str | None) -> str | None:
    """What ``connection_init`` says (a string), else the upgrade request's header."""
    return given if isinstance(given, str) else header
