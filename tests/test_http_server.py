"""Malformed HTTP over a raw socket, as the server the service runs on (uvicorn with httptools) answers it.

Each request is refused by the server with a 4xx (or the connection is closed), never a 5xx, and the server
goes on answering a normal request afterwards. The tests' server is ``uvicorn.Config(http="auto")``, which is
httptools when it is installed, as it is in CI and in the image (uvicorn[standard]); h11 answers some of these
differently (it takes Content-Length with Transfer-Encoding, for one), so the module insists on httptools. The bound
on a request head (431) is graph.http.server's, so those tests run on its protocol classes, under both parsers.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import re
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.auto import AutoHTTPProtocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from graph.app import create_app
from graph.config import Settings
from graph.http.server import GuardedH11, GuardedHttpTools
from tests.servers import serve

BODY = b'{"query": "{ __typename }"}'
HEAD = b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\n"
BIG = b"X-Big: " + b"x" * 80_000 + b"\r\n"

MALFORMED = {
    "a request line that is no request line": b"GARBAGE\r\n\r\n",
    "a request line with a fourth word": b"GET /graphql HTTP/1.1 extra\r\nHost: 127.0.0.1\r\n\r\n",
    "a Content-Length that is no number": HEAD + b"Content-Length: abc\r\n\r\n" + BODY,
    "Content-Length and Transfer-Encoding together": HEAD
    + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), len(BODY), BODY),
    "a NUL in a header value": HEAD + b"X-Note: a\x00b\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY),
    "a chunk size that is no hex number": HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n%s\r\n0\r\n\r\n" % BODY,
}
# uvicorn's own httptools protocol (0.54) bounds no request head: an 80 KB header reaches the app. The protocol
# classes the service runs on (graph.http.server, through graph/http/heads.py) refuse it: see the 431 tests below.
TOO_BIG = HEAD + BIG + b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
PROTOCOLS = [pytest.param(GuardedHttpTools, id="httptools"), pytest.param(GuardedH11, id="h11")]


def exchange(url: str, data: bytes) -> bytes:
    """Send ``data`` on a new connection and read until the server closes it: b"" if it answered nothing."""
    parts = urlsplit(url)
    received = b""
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        try:
            conn.sendall(data)
            while chunk := conn.recv(65536):
                received += chunk
        except (BrokenPipeError, ConnectionResetError):  # closed while we still wrote: refused too
            pass
    return received


def status(response: bytes) -> int | None:
    """The status code of the response's first line; None for a connection closed without an answer."""
    if not response:
        return None
    version, code, _ = response.split(b"\r\n", 1)[0].split(b" ", 2)
    assert version == b"HTTP/1.1"
    return int(code)


def still_serving(url: str) -> None:
    response = exchange(url, HEAD + b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY))
    assert status(response) == 200
    assert response.endswith(b'{"data":{"__typename":"Query"}}')


def test_the_server_is_httptools() -> None:
    importlib.import_module("httptools")
    assert AutoHTTPProtocol is HttpToolsProtocol


@pytest.mark.parametrize("data", [pytest.param(data, id=name) for name, data in MALFORMED.items()])
def test_malformed_requests_are_refused(graph_url: str, data: bytes) -> None:
    code = status(exchange(graph_url, data))
    assert code is None or 400 <= code < 500, code
    still_serving(graph_url)


def test_an_80_kb_header_costs_no_5xx(graph_url: str) -> None:
    code = status(exchange(graph_url, TOO_BIG))
    assert code is None or code < 500, code
    still_serving(graph_url)


@pytest.fixture(params=PROTOCOLS)
def guarded_url(request: pytest.FixtureRequest, settings: Settings) -> Iterator[str]:
    """The service on the protocol class ``serve`` runs it on (httptools), and on the h11 fallback."""
    with serve(create_app(settings), lifespan="on", http=request.param) as url:
        yield url


def test_a_head_over_the_bound_is_431_whole(guarded_url: str) -> None:
    response = exchange(guarded_url, TOO_BIG)  # the whole head in one write: h11 alone lets this one through
    assert status(response) == 431
    assert b"exceed 16384 bytes" in response  # uvicorn's h11_max_incomplete_event_size, for both parsers
    assert b"connection: close" in response.lower()
    still_serving(guarded_url)


def test_a_head_over_the_bound_is_431_before_it_ends(guarded_url: str) -> None:
    parts = urlsplit(guarded_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        conn.sendall(HEAD + b"X-Long: ")
        sent, response = 0, b""
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while sent < 200_000:  # one header that never ends: refused once the bound is passed, not at its end
                conn.sendall(b"y" * 4096)
                sent += 4096
                time.sleep(0.005)
        while chunk := conn.recv(65536):
            response += chunk
    assert status(response) == 431
    assert sent < 100_000
    still_serving(guarded_url)


def test_heads_under_the_bound_and_large_bodies_pass(guarded_url: str) -> None:
    near = b"X-Near: " + b"z" * 15_000 + b"\r\n"  # a head of ~15.2 KB: under the bound
    assert status(exchange(guarded_url, HEAD + near + b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY))) == 200
    # A small head with a 60 KB body in the same write: the body never counts as head.
    padded = b'{"query": "{ __typename }", "extensions": {"pad": "%s"}}' % (b"p" * 60_000)
    response = exchange(guarded_url, HEAD + b"Content-Length: %d\r\n\r\n%s" % (len(padded), padded))
    assert status(response) == 200


async def _slow_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers every request after 0.3 s."""
    if scope["type"] != "http":
        return
    await asyncio.sleep(0.3)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_oversized_head_behind_an_answer_lets_that_answer_finish(protocol: type[asyncio.Protocol]) -> None:
    with serve(_slow_app, http=protocol) as url:
        parts = urlsplit(url)
        with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.05)  # its answer is on its way when the next, pipelined, head arrives
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"y" * 20_000)
            response = b""
            while chunk := conn.recv(65536):
                response += chunk
    codes = [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", response)]
    # The first answer whole, then the connection closed: h11 parses the next head only once the first is
    # answered, and refuses it then (431); httptools saw it arrive meanwhile and says nothing more.
    assert codes in ([200], [200, 431])
    assert b"\r\n\r\nok" in response
