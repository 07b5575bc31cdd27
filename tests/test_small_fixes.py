"""Small fixes from the attacker's side: text log lines cannot be forged, no redirect is built from the Host header.
(Content-Length with Transfer-Encoding: tests/test_server_guard.py and tests/test_slow_clients.py, on raw sockets.)
"""

from __future__ import annotations

import asyncio
import logging
import socket
from urllib.parse import urlsplit

import httpx
import pytest

from graph.observability import logs


@pytest.fixture
def restore_logging() -> object:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("httpx").level, logging.getLogger("httpcore").level)
    yield None
    root.handlers[:], level, httpx_level, httpcore_level = saved
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(httpx_level)
    logging.getLogger("httpcore").setLevel(httpcore_level)


FORGED = "2026-01-01 00:00:00,000 CRITICAL graph.app: database wiped"


def test_text_lines_escape_control_characters(restore_logging: object, capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("text", "INFO")
    log = logging.getLogger("graph.test")
    log.warning("message\r\n%s", FORGED, extra={"path": f"/graphql\r\n{FORGED}", "ua": "\x1b[2J\x00\x7f\x85\u2028\t"})
    try:
        raise ValueError(f"boom\n{FORGED}")
    except ValueError:
        log.exception("failed\n%s", FORGED)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].endswith(
        "WARNING graph.test: message\\r\\n"
        + FORGED
        + " path=/graphql\\r\\n"
        + FORGED
        + " ua=\\x1b[2J\\x00\\x7f\\x85\\u2028\\t"
    )
    assert lines[1].endswith("ERROR graph.test: failed\\n" + FORGED)
    # The traceback keeps its lines, each indented: none starts like a record.
    assert lines[2:]
    assert all(line.startswith("    ") for line in lines[2:])
    assert lines[-1] == "    " + FORGED
    assert not any(line.startswith(FORGED) for line in lines)


async def test_a_request_path_cannot_forge_a_line(
    graph_url: str, restore_logging: object, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure("text", "INFO")
    parts = urlsplit(graph_url)
    assert parts.hostname is not None
    assert parts.port is not None
    path = "/x%0d%0a" + FORGED.replace(" ", "%20")
    # Raw: client libraries would refuse or re-encode such a path.
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await reader.read()
    writer.close()
    err = ""
    for _ in range(300):
        err += capsys.readouterr().err
        if "graph.http: request" in err:
            break
        await asyncio.sleep(0.01)
    [line] = [line for line in err.splitlines() if "graph.http: request" in line]
    assert "path=/x\\r\\n" + FORGED in line
    assert not any(line.startswith(FORGED) for line in err.splitlines())


@pytest.mark.parametrize("path", ["/graphql/", "/healthz/", "/metrics/"])
async def test_no_redirect_is_built_from_the_host_header(graph_url: str, path: str) -> None:
    async with httpx.AsyncClient(base_url=graph_url, timeout=10) as http:
        for method in ("GET", "POST"):
            answer = await http.request(
                method, path, headers={"Host": "evil.example"}, json={"query": "{ __typename }"}
            )
            assert answer.status_code == 404
            assert "location" not in answer.headers
            assert "evil.example" not in answer.text


def test_the_raw_redirect_probe(graph_url: str) -> None:
    # Byte for byte what an attacker sends (an absolute-form target and a Host of their own), and what comes back.
    parts = urlsplit(graph_url)
    with socket.create_connection((parts.hostname or "", parts.port or 0), timeout=5) as sock:
        sock.sendall(b"GET /graphql/ HTTP/1.1\r\nHost: evil.example\r\nX-Forwarded-Host: evil.example\r\n\r\n")
        head = sock.recv(65536).split(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 404 ")
    assert b"location" not in head
    assert b"evil" not in head
