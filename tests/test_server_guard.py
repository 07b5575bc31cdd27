"""graph.http.server in process, under both of uvicorn's HTTP parsers (httptools, and h11 without it): the read
deadline, the connection cap, Content-Length with Transfer-Encoding, the accept-failure lines summed up.

Raw sockets, because what is tested is what a well-behaved client library never does: trickle, stall, pipeline.
The real ``serve`` process under a lowered file limit is tests/test_slow_clients.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import resource
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import uvloop
from starlette.types import Receive, Scope, Send

from graph.config import Settings
from graph.http import server
from graph.http.server import GuardedH11, GuardedHttpTools, Limits
from tests.servers import serve

PROTOCOLS = [GuardedHttpTools, GuardedH11]
DEADLINE_S = 0.6
disconnects: list[str] = []


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Echoes the body's length; /early answers before reading it, /stream answers slowly, /slow thinks a second."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path in {"/early", "/stream"}:
        await send({"type": "http.response.start", "status": 413 if path == "/early" else 200, "headers": []})
        if path == "/stream":
            await send({"type": "http.response.body", "body": b"part,", "more_body": True})
            await asyncio.sleep(2 * DEADLINE_S)
        await send({"type": "http.response.body", "body": b"done"})
        return
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            disconnects.append(path)
            return
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    if path == "/slow":
        await asyncio.sleep(1.0)
    body = f"got {size}".encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(params=PROTOCOLS, ids=["httptools", "h11"])
def address(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, int]]:
    monkeypatch.setattr(server, "_limits", Limits(read_timeout_s=DEADLINE_S, max_connections=1000))
    disconnects.clear()
    with serve(app, http=request.param) as url:
        parts = urlsplit(url)
        assert parts.hostname is not None
        assert parts.port is not None
        yield parts.hostname, parts.port


def connect(address: tuple[str, int], data: bytes = b"") -> socket.socket:
    sock = socket.create_connection(address, timeout=5)
    if data:
        sock.sendall(data)
    return sock


def read_until_closed(sock: socket.socket, *, trickle: bytes = b"", timeout_s: float = 5.0) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and when it closed; ``trickle`` is sent every 0.1 s meanwhile."""
    started = time.monotonic()
    received = b""
    sock.settimeout(0.1)
    while time.monotonic() - started < timeout_s:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            if trickle:
                with contextlib.suppress(OSError):
                    sock.sendall(trickle)
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        received += chunk
    else:
        raise AssertionError(f"still open after {timeout_s} s: {received!r}")
    sock.close()
    return received, time.monotonic() - started


def statuses(data: bytes) -> list[int]:
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]


def test_trickled_headers_get_a_408_at_the_deadline(address: tuple[str, int]) -> None:
    sock = connect(address, b"GET /a HTTP/1.1\r\nHost: x\r\n")
    data, after = read_until_closed(sock, trickle=b"X-Slow: 1\r\n")
    assert statuses(data) == [408]
    assert DEADLINE_S - 0.05 <= after <= DEADLINE_S + 1.0


def test_a_trickled_body_gets_a_408_and_the_app_a_disconnect(address: tuple[str, int]) -> None:
    sock = connect(address, b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nx")
    data, after = read_until_closed(sock, trickle=b"x")
    assert statuses(data) == [408]
    assert after <= DEADLINE_S + 1.0
    time.sleep(0.1)
    assert disconnects == ["/b"]


def test_a_silent_connection_is_closed_at_the_deadline(address: tuple[str, int]) -> None:
    data, after = read_until_closed(connect(address))
    assert statuses(data) == [408]
    assert DEADLINE_S - 0.05 <= after <= DEADLINE_S + 1.0


def test_the_deadline_counts_from_each_requests_first_byte(address: tuple[str, int]) -> None:
    # Idle between two requests for longer than the deadline (uvicorn's keep-alive timer, 5 s, governs that).
    sock = connect(address, b"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
    first = sock.recv(65536)
    time.sleep(DEADLINE_S + 0.3)
    sock.sendall(b"GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data, _ = read_until_closed(sock)
    assert statuses(first) == [200]
    assert first.endswith(b"got 3")
    assert statuses(data) == [200]


def test_a_pipelined_request_waiting_for_the_one_before_is_not_timed_out(address: tuple[str, int]) -> None:
    # The first request is answered after 1 s (> the deadline); the second's body never comes: 408 only once its
    # own wait is the client's fault.
    slow = b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
    sock = connect(address, slow + b"POST /d HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
    data, _ = read_until_closed(sock)
    assert statuses(data) == [200, 408]


def test_an_early_answer_then_a_stalled_body_closes_quietly(address: tuple[str, int]) -> None:
    sock = connect(address, b"POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nxx")
    data, after = read_until_closed(sock, trickle=b"x")
    assert statuses(data) == [413]
    assert after <= DEADLINE_S + 1.0


def test_a_response_being_written_is_finished_then_the_connection_closed(address: tuple[str, int]) -> None:
    sock = connect(address, b"POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nxx")
    data, after = read_until_closed(sock)
    assert statuses(data) == [200]
    assert b"part," in data
    assert b"done" in data
    assert after >= 2 * DEADLINE_S - 0.05


def test_content_length_with_transfer_encoding_is_a_400(address: tuple[str, int]) -> None:
    smuggle = b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /f"
    data, _ = read_until_closed(connect(address, smuggle))
    assert statuses(data) == [400]
    assert disconnects == []  # the app never saw it


def test_over_the_cap_the_oldest_idle_connection_makes_room(
    address: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "_limits", Limits(read_timeout_s=5.0, max_connections=2))
    oldest, other = connect(address), connect(address)
    time.sleep(0.1)
    newest = connect(address, b"GET /g HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data, _ = read_until_closed(newest)
    assert statuses(data) == [200]
    evicted, after = read_until_closed(oldest)
    assert statuses(evicted) == [503]
    assert after < 1.0
    other.close()


def test_over_the_cap_with_every_connection_busy_the_new_one_is_refused(
    address: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "_limits", Limits(read_timeout_s=5.0, max_connections=1))
    busy = connect(address, b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    time.sleep(0.2)
    refused, after = read_until_closed(connect(address, b"GET /h HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert statuses(refused) == [503]
    assert after < 0.5
    answered, _ = read_until_closed(busy)
    assert statuses(answered) == [200]  # a request being answered is never what makes room


def test_limits_come_from_the_settings_and_the_file_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    saved = server.limits()
    try:
        assert server.configure(Settings(credentials=None, request_read_timeout_s=3.0, max_connections=7)) == Limits(
            3.0, 7
        )
        monkeypatch.setattr(resource, "getrlimit", lambda _: (256, 256))
        assert server.configure(Settings(credentials=None)) == Limits(10.0, 192)
        assert server.limits() == Limits(10.0, 192)
    finally:
        monkeypatch.setattr(server, "_limits", saved)
    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 4096))
    assert server.default_max_connections() == 922
    monkeypatch.setattr(resource, "getrlimit", lambda _: (40, 40))
    assert server.default_max_connections() == 16
    monkeypatch.setattr(resource, "getrlimit", lambda _: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    assert server.default_max_connections() == 10_000
    monkeypatch.setattr(resource, "getrlimit", lambda _: (1_048_576, 1_048_576))  # Docker's default
    assert server.default_max_connections() == 10_000
    assert server.protocol_class() is GuardedHttpTools  # httptools is installed: the fast parser


def test_accept_failures_make_one_line_per_interval(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(server, "SUMMARY_INTERVAL_S", 0.05)
    loop = server.new_asyncio_loop()
    try:

        async def flood() -> None:
            for _ in range(2000):  # what asyncio reports per failed accept() once the file limit is reached
                loop.call_exception_handler({"message": server.ACCEPT_FAILURE, "exception": OSError(24, "EMFILE")})
            await asyncio.sleep(0.2)
            loop.call_exception_handler({"message": "something else"})

        with caplog.at_level(logging.WARNING):
            loop.run_until_complete(flood())
    finally:
        loop.close()
    summaries = [record for record in caplog.records if record.name == "graph.server"]
    assert len(summaries) == 2
    assert sum(record.__dict__["events"] for record in summaries) == 2000
    assert all(server.ACCEPT_FAILURE in record.getMessage() for record in summaries)
    assert "something else" in [record.getMessage() for record in caplog.records if record.name == "asyncio"]
    # A window whose flush never ran (its loop stopped) does not silence the next process-wide event.
    stale = server._Summary("%d test event(s)")
    stale.count, stale.opened = 7, time.monotonic() - 3 * server.SUMMARY_INTERVAL_S
    caplog.clear()
    loop = server.new_asyncio_loop()
    try:
        with caplog.at_level(logging.WARNING):
            stale.add(loop)
    finally:
        loop.close()
    assert [record.getMessage() for record in caplog.records if record.name == "graph.server"] == ["1 test event(s)"]
    fast = server.new_event_loop()
    try:
        assert isinstance(fast, uvloop.Loop)
        assert fast.get_exception_handler() is server._exception_handler
    finally:
        fast.close()
