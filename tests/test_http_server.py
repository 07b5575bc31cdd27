"""Malformed HTTP over a raw socket, as the server the service runs on (uvicorn with httptools) answers it.

Each request is refused by the server with a 4xx (or the connection is closed), never a 5xx, and the server
goes on answering a normal request afterwards. The tests' server is ``uvicorn.Config(http="auto")``, which is
httptools when it is installed, as it is in CI and in the image (uvicorn[standard]); h11 answers some of these
differently (it takes Content-Length with Transfer-Encoding, for one), so the module insists on httptools.
"""

from __future__ import annotations

import importlib
import socket
from urllib.parse import urlsplit

import pytest
from uvicorn.protocols.http.auto import AutoHTTPProtocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

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
# What uvicorn's httptools protocol (0.54) does with an over-long header: nothing. It sets no bound on a request
# head (h11's is 16 KiB, and even that only holds when the head arrives in pieces), so an 80 KB header reaches
# the service, which ignores it and answers 200. Expected to be refused once the edge bounds request heads.
TOO_BIG = pytest.param(
    HEAD + BIG + b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY),
    id="an 80 KB header",
    marks=pytest.mark.xfail(reason="uvicorn's httptools protocol bounds no request head: the app answers 200"),
)


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


@pytest.mark.parametrize("data", [*(pytest.param(data, id=name) for name, data in MALFORMED.items()), TOO_BIG])
def test_malformed_requests_are_refused(graph_url: str, data: bytes) -> None:
    code = status(exchange(graph_url, data))
    assert code is None or 400 <= code < 500, code
    still_serving(graph_url)


def test_an_80_kb_header_costs_no_5xx(graph_url: str) -> None:
    code = status(exchange(graph_url, HEAD + BIG + b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)))
    assert code is None or code < 500, code
    still_serving(graph_url)
