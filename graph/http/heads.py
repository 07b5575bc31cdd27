"""A bound on a request's head (request line and headers) for both of uvicorn's parsers: 431 and close.

uvicorn's h11 protocol has ``h11_max_incomplete_event_size`` (16 KiB by default): h11 refuses a head still incomplete
when its buffer passes the bound ("Receive buffer too long", with a 431 hint that uvicorn turns into a 400), and lets
through any head that arrives whole in one read, however long. uvicorn's httptools protocol bounds nothing: an
80 KB header reached the app, and httptools buffers a header value until it ends. Here both refuse, with
``431 Request Header Fields Too Large`` and the connection closed, a head that is over the same bound (uvicorn's
``h11_max_incomplete_event_size``, 16 KiB as uvicorn has it and as Node.js has its ``maxHeaderSize``):

- whole: counted from its parsed parts (method, target, each header name and value with ": " and CRLF);
- still incomplete: counted as its bytes arrive (for h11, h11's own check), so a long header is refused before
  it ends, not buffered to the end first. With httptools the bytes that follow a request's end in the same read
  (a pipelined head) are counted from the next read on: the bound may be passed by one read before the refusal.

A head pipelined behind a request still being answered is not refused in the middle of that answer: the answer is
written, then the connection closed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from h11._connection import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE  # what uvicorn's h11 protocol uses when not set
from uvicorn.config import Config

TOO_LARGE = 431


def max_head(config: Config) -> int:
    return config.h11_max_incomplete_event_size or DEFAULT_MAX_INCOMPLETE_EVENT_SIZE


def refusal(limit: int) -> bytes:
    body = f"Request Header Fields Too Large: the request line and headers exceed {limit} bytes".encode("ascii")
    return (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
    )


def _refuse(protocol: Any, limit: int) -> None:
    cycle = protocol.cycle
    if cycle is not None and not cycle.response_complete:
        # A pipelined head, behind a request still being answered: that answer is written, then the connection
        # closes (uvicorn closes after a response that may not keep the connection alive); nothing more is read.
        cycle.keep_alive = False
        protocol.flow.pause_reading()
        return
    transport: asyncio.Transport = protocol.transport
    transport.write(refusal(limit))
    transport.close()


class _HeadTooLarge(Exception):
    """Raised in a parser callback to stop parsing: httptools hands it to uvicorn as a parser error."""


class HeadBoundHttpTools:
    """For uvicorn's httptools protocol (listed before it). Bytes are counted while a head is awaited (a read
    holding a head's end and a body is then measured by the head's parts instead)."""

    url: bytes
    headers: list[tuple[bytes, bytes]]

    def __init__(self, config: Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)  # type: ignore[call-arg]
        self.max_head = max_head(config)
        self.head_bytes = 0  # of the head being received, as they arrive
        self.in_body = False  # between a head's end and its message's end
        self.head_too_large = False

    def data_received(self, data: bytes) -> None:
        if not self.in_body:
            self.head_bytes += len(data)
        super().data_received(data)  # type: ignore[misc]
        if not self.in_body and self.head_bytes > self.max_head:
            _refuse(self, self.max_head)  # still no whole head, and already over the bound

    def on_headers_complete(self) -> None:
        self.head_bytes = 0
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.max_head:
            self.head_too_large = True
            raise _HeadTooLarge  # no request cycle starts; uvicorn calls send_400_response, below
        self.in_body = True
        super().on_headers_complete()  # type: ignore[misc]

    def on_message_complete(self) -> None:
        self.in_body = False
        super().on_message_complete()  # type: ignore[misc]

    def send_400_response(self, msg: str) -> None:
        if self.head_too_large:
            _refuse(self, self.max_head)
            return
        super().send_400_response(msg)  # type: ignore[misc]


class StrictConnection(h11.Connection):
    """h11 lets Transfer-Encoding win over Content-Length (RFC 9112 6.3); a server behind a proxy that reads the
    other one is a request-smuggling pair, so both together are a protocol error, as httptools has it. A head over
    the bound is one too, whole or not, marked 431."""

    refused_with: int | None = None  # the status h11 or this class meant for the last protocol error

    def next_event(self) -> Any:
        try:
            event = super().next_event()
            if isinstance(event, h11.Request):
                names = {name.lower() for name, _ in event.headers}
                if b"content-length" in names and b"transfer-encoding" in names:
                    raise h11.RemoteProtocolError("Content-Length and Transfer-Encoding together")
                size = len(event.method) + len(event.target) + sum(len(n) + len(v) + 4 for n, v in event.headers)
                if size > self._max_incomplete_event_size:
                    raise h11.RemoteProtocolError("request head too large", error_status_hint=TOO_LARGE)
        except h11.RemoteProtocolError as exc:
            self.refused_with = exc.error_status_hint
            raise
        return event


class HeadBoundH11:
    """For uvicorn's h11 protocol (listed before it): a protocol error marked 431 is answered 431, not 400."""

    conn: h11.Connection

    def send_400_response(self, msg: str) -> None:
        if getattr(self.conn, "refused_with", None) == TOO_LARGE:
            _refuse(self, self.conn._max_incomplete_event_size)
            return
        super().send_400_response(msg)  # type: ignore[misc]
