"""Protections below the ASGI app, in uvicorn's connection protocol (docs/operations.md, "Slow and many clients").

uvicorn 0.54 times out nothing while a request is being received (uvicorn#157): its only timer is the keep-alive
one, armed after a response, and its ``limit_concurrency`` answers 503 only once a request's headers are in. A
client sending a header line every few seconds, or a body byte by byte, holds a socket and a file descriptor
forever, and enough of them exhaust the file limit: accept() then fails (asyncio logs each failure with a
traceback; uvloop's libuv accepts and drops every new connection, /healthz included). An ASGI middleware cannot
help, it runs after the headers are in. So the protocol classes are subclassed here:

- a deadline for receiving a whole request (``GRAPH_REQUEST_READ_TIMEOUT_S``): armed when a connection is made and
  when a request's first byte arrives, cancelled when its last byte is in; when it fires the client gets a 408
  and the connection is closed (a response already being written is finished first, then the connection closed);
- a cap on open connections (``GRAPH_MAX_CONNECTIONS``, by default below the process's file limit): over it, the
  connection idle or receiving for longest is closed (503) to make room, so the file limit is never reached and a
  probe's new connection is answered; a request whose body is in and is being answered is never closed this way;
- with h11 (no httptools), a request with both Content-Length and Transfer-Encoding is refused with a 400, as
  httptools (llhttp) already refuses it;
- a request head (request line and headers) over uvicorn's ``h11_max_incomplete_event_size`` (16 KiB) is refused
  with a 431 under both parsers (graph/http/heads.py);
- the event loop's "socket.accept() out of system resource" log lines, and our own closings, summed up in at
  most one line per kind every ``SUMMARY_INTERVAL_S``.
"""

from __future__ import annotations

import asyncio
import http
import logging
import resource
import time
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from graph.config import Settings
from graph.http.heads import HeadBoundH11, HeadBoundHttpTools, StrictConnection

log = logging.getLogger("graph.server")
SUMMARY_INTERVAL_S = 10.0
ACCEPT_FAILURE = "socket.accept() out of system resource"
_RESERVE_FDS = 64  # kept free below the file limit: log files, the gateway's and Redis's sockets, a reload
_DEFAULT_CEILING = 10_000  # connections per process when the file limit allows more


@dataclass(frozen=True)
class Limits:
    read_timeout_s: float = 10.0
    max_connections: int = 1000


_limits = Limits()


def default_max_connections() -> int:
    """What the file limit leaves for client connections once the process's own descriptors are counted, and no
    more than ``_DEFAULT_CEILING`` (Docker's default limit, 1,048,576, would otherwise mean no cap at all)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return _DEFAULT_CEILING
    return min(_DEFAULT_CEILING, max(16, soft - max(_RESERVE_FDS, soft // 10)))


def configure(settings: Settings) -> Limits:
    """Set this process's limits (each worker calls it from the app factory, before its first connection)."""
    global _limits
    _limits = Limits(settings.request_read_timeout_s, settings.max_connections or default_max_connections())
    return _limits


def limits() -> Limits:
    return _limits


class _Summary:
    """Counts one kind of event and logs their number at most once per interval (a flood makes one line)."""

    def __init__(self, message: str, level: int = logging.WARNING) -> None:
        self.message = message
        self.level = level
        self.count = 0
        self.opened = 0.0

    def add(self, loop: asyncio.AbstractEventLoop) -> None:
        now = time.monotonic()
        if self.count and now - self.opened > 2 * SUMMARY_INTERVAL_S:
            self.count = 0  # the flush never ran: its loop was stopped (a server restarted in the same process)
        self.count += 1
        if self.count == 1:
            self.opened = now
            log.log(self.level, self.message, 1, extra={"events": 1})  # the first at once, the rest summed up
            loop.call_later(SUMMARY_INTERVAL_S, self._flush, loop)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        more, self.count = self.count - 1, 0
        if more:
            log.log(self.level, self.message, more, extra={"events": more})
            self.count, self.opened = 1, time.monotonic()  # the window stays open while events keep coming
            loop.call_later(SUMMARY_INTERVAL_S, self._flush, loop)


TIMED_OUT = _Summary("%d connection(s) closed: no whole request within GRAPH_REQUEST_READ_TIMEOUT_S (408)")
EVICTED = _Summary("%d connection(s) closed to stay within GRAPH_MAX_CONNECTIONS (503)")
ACCEPT_FAILED = _Summary(ACCEPT_FAILURE + ": %d failed accept(s); raise the file limit or lower GRAPH_MAX_CONNECTIONS")


def _refusal(status: int, text: str) -> bytes:
    body = text.encode("ascii")
    phrase = http.HTTPStatus(status).phrase
    return (
        f"HTTP/1.1 {status} {phrase}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode("ascii") + body


REQUEST_TIMEOUT = _refusal(408, "Request Timeout: the request was not received in time")
TOO_MANY = _refusal(503, "Service Unavailable: too many connections")

# Connections that may be closed to make room (idle, or receiving a request), oldest first: a dict keeps insertion
# order, and a connection is moved to the end each time it starts receiving a request. One per process.
_closable: dict[_Guard, None] = {}


class _Guard:
    """The deadline and the connection cap of one connection, for either protocol class."""

    def __init__(self, protocol: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.protocol = protocol
        self.loop = loop
        self.timer: asyncio.TimerHandle | None = None
        self.headers_in = False  # the current request's headers were parsed (its cycle is protocol.cycle)

    def made(self, connections: set[Any]) -> None:
        if len(connections) > _limits.max_connections:
            # The oldest, passing over one whose previous answer is still being written (a pipelining client).
            victim = next((guard for guard in _closable if not guard.writing()), None)
            if victim is None:  # every other connection has a whole request being answered: refuse this one
                self.protocol.transport.write(TOO_MANY)
                self.protocol.transport.close()
                EVICTED.add(self.loop)
                return
            victim.close_with(TOO_MANY)
            EVICTED.add(self.loop)
        self.receiving()

    def receiving(self) -> None:
        """A request's first byte (or a new connection): the deadline starts unless it already runs."""
        _closable.pop(self, None)
        _closable[self] = None
        if self.timer is None:
            self.timer = self.loop.call_later(_limits.read_timeout_s, self._expired)

    def received(self) -> None:
        """The request is in: no deadline, and not closable while it is answered."""
        self._cancel()
        _closable.pop(self, None)

    def answered(self) -> None:
        """A response is complete: idle now, closable (uvicorn's keep-alive timer ends the connection later)."""
        cycle = self.protocol.cycle
        idle = self.timer is None and (cycle is None or cycle.response_complete)
        if idle and not self.protocol.transport.is_closing():
            _closable[self] = None

    def writing(self) -> bool:
        cycle = self.protocol.cycle
        return bool(cycle is not None and cycle.response_started and not cycle.response_complete)

    def lost(self) -> None:
        self._cancel()
        _closable.pop(self, None)

    def _cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _expired(self) -> None:
        self.timer = None
        cycle = self.protocol.cycle
        if getattr(self.protocol, "pipeline", None):
            # A pipelined request waits for the one before it to be answered: the wait is ours, not the client's.
            self.timer = self.loop.call_later(_limits.read_timeout_s, self._expired)
            return
        if self.writing():
            cycle.keep_alive = False  # a response is being written: finish it, then close
            return
        TIMED_OUT.add(self.loop)
        self.close_with(REQUEST_TIMEOUT)

    def close_with(self, refusal: bytes) -> None:
        self.lost()
        transport = self.protocol.transport
        if transport.is_closing():
            return
        cycle = self.protocol.cycle
        current = cycle is not None and self.headers_in
        if getattr(self.protocol, "pipeline", None) or (current and cycle.response_started):
            # Answered early (before the body was in), or an earlier request's answer may be being written:
            # nothing more can be said on this connection.
            transport.close()
            return
        if current:
            cycle.disconnected = True  # the app's next receive() is http.disconnect and its send() a no-op
            cycle.message_event.set()
        transport.write(refusal)
        transport.close()


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    HTTPTOOLS = True
except ImportError:  # pragma: no cover  (httptools comes with uvicorn[standard], a dependency)
    HttpToolsProtocol = H11Protocol  # type: ignore[misc, assignment]  # GuardedHttpTools is then never served
    HTTPTOOLS = False


class _Guarded:
    """What both protocol classes share: a guard per connection, told when the connection opens and closes.
    Listed before uvicorn's class, so its methods wrap uvicorn's."""

    loop: asyncio.AbstractEventLoop
    connections: set[Any]

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(config, server_state, app_state, **kwargs)  # type: ignore[call-arg]
        self.guard = _Guard(self, self.loop)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self.guard.made(self.connections)

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.lost()
        super().connection_lost(exc)  # type: ignore[misc]


class GuardedHttpTools(_Guarded, HeadBoundHttpTools, HttpToolsProtocol):
    """uvicorn's httptools protocol with the read deadline and the connection cap."""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.guard.headers_in = False
        self.guard.receiving()

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self.guard.headers_in = True

    def on_message_complete(self) -> None:
        self.guard.received()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.guard.answered()

    def handle_websocket_upgrade(self) -> None:
        self.guard.lost()  # a WebSocket lives as long as it likes: its own protocol's pings watch it
        super().handle_websocket_upgrade()


class GuardedH11(_Guarded, HeadBoundH11, H11Protocol):
    """uvicorn's h11 protocol (the fallback without httptools) with the same protections."""

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(config, server_state, app_state, **kwargs)
        self.conn = StrictConnection(h11.SERVER, self.conn._max_incomplete_event_size)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and self.guard.timer is None:
            self.guard.headers_in = False
            self.guard.receiving()  # a request's first bytes
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may start a pipelined request
        self._follow()
        self.guard.answered()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self.guard.lost()
        super().handle_websocket_upgrade(event)

    def _follow(self) -> None:
        """h11 has no per-request callbacks: the client's state after each step says where its request is."""
        state = self.conn.their_state
        if state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR):
            self.guard.received()
        elif state is h11.SEND_BODY or (state is h11.IDLE and self.conn.trailing_data[0]):
            self.guard.headers_in = state is h11.SEND_BODY
            if self.guard.timer is None:  # a pipelined request, started once the one before it was answered
                self.guard.receiving()


def protocol_class() -> type[asyncio.Protocol]:
    """The class ``serve`` hands uvicorn: httptools' when installed (as uvicorn's "auto" picks), else h11's."""
    return GuardedHttpTools if HTTPTOOLS else GuardedH11  # pragma: no branch


def _exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    if str(context.get("message", "")).startswith(ACCEPT_FAILURE):
        ACCEPT_FAILED.add(loop)  # asyncio logs each failed accept(), traceback and all: summed up instead
        return
    loop.default_exception_handler(context)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The loop factory ``serve`` names to uvicorn (``loop="graph.http.server:new_event_loop"``): uvloop when
    installed, as uvicorn's "auto" picks, with the accept-failure lines summed up."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return new_asyncio_loop()
    loop = uvloop.new_event_loop()
    loop.set_exception_handler(_exception_handler)
    return loop


def new_asyncio_loop() -> asyncio.AbstractEventLoop:
    """The same on the standard library's loop (the one that logs every failed accept)."""
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(_exception_handler)
    return loop
