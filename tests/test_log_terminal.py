"""``GRAPH_LOG_FORMAT=auto`` (the default): a real ``python -m graph serve --demo`` writes text lines when its stderr is
a terminal (a pseudo-terminal from the ``pty`` module, as a shell gives it) and JSON lines when it is a pipe, as in
a container; the text keeps the request id and escapes control characters. ``pytest -s`` prints both lines of the
same request side by side."""

from __future__ import annotations

import io
import json
import os
import pty
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from graph.observability import logs

ROOT = Path(__file__).resolve().parent.parent
QUERY = 'query Status { miniAppVersion(appVersion: "0.0.1") { status } }'


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Output:
    """Everything a file descriptor gives until its writer is gone, read on a thread so the child never blocks."""

    def __init__(self, fd: int) -> None:
        self._fd, self._chunks = fd, [b""]
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except OSError:  # EIO: a pseudo-terminal whose other side has closed
                return
            if not chunk:
                return
            self._chunks.append(chunk)

    def text(self) -> str:
        return b"".join(self._chunks).decode("utf-8", "replace").replace("\r\n", "\n")

    def wait_for(self, needle: str, timeout_s: float = 30) -> str:
        deadline = time.monotonic() + timeout_s
        while needle not in self.text():
            assert time.monotonic() < deadline, f"{needle!r} never came; got:\n{self.text()}"
            time.sleep(0.02)
        return self.text()

    def close(self) -> None:
        self._thread.join(timeout=10)
        os.close(self._fd)


@contextmanager
def demo(terminal: bool) -> Iterator[tuple[str, Output]]:
    """``serve --demo`` with no GRAPH_LOG_FORMAT, its stderr a pseudo-terminal or a pipe."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIPAY_", "GRAPH_"))}
    reader, writer = pty.openpty() if terminal else os.pipe()
    process = subprocess.Popen(
        [sys.executable, "-m", "graph", "serve", "--demo", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=writer,
    )
    os.close(writer)  # the child holds it: the reader sees the end when the child is gone
    output = Output(reader)
    try:
        output.wait_for("service ready")
        yield f"http://127.0.0.1:{port}", output
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        output.close()


def _request_line(lines: str, request_id: str) -> str:
    """The request's own line (its gateway attempts carry the id too)."""
    [line] = [
        line
        for line in lines.splitlines()
        if request_id in line and ("graph.http: request " in line or '"message":"request"' in line)
    ]
    return line


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "pipe"])
def test_auto_writes_text_at_a_terminal_and_json_elsewhere(terminal: bool) -> None:
    with demo(terminal) as (url, output), httpx.Client(base_url=url, timeout=20) as http:
        answer = http.post("/graphql", json={"query": QUERY}, headers={"X-Request-Id": "log-auto-1"})
        assert answer.json()["data"] == {"miniAppVersion": {"status": "RELEASE"}}
        # A path carrying CR LF (decoded before it is logged) must not start a line of its own.
        http.get("/x%0d%0aINFO graph.http: forged", headers={"X-Request-Id": "log-auto-2"})
        text = output.wait_for("log-auto-2")
    request = _request_line(text, "log-auto-1")
    forged = _request_line(text, "log-auto-2")
    assert not any(line.startswith("INFO graph.http: forged") for line in text.splitlines())
    if terminal:
        assert " INFO graph.http: request " in request
        assert "request_id=log-auto-1" in request
        assert "operation=Status" in request
        assert "path=/x\\r\\nINFO graph.http: forged" in forged
        assert not any(line.startswith("{") for line in text.splitlines())
        print(f"\nterminal: {request}")  # noqa: T201  (the line a person sees; shown with -s)
    else:
        line = json.loads(request)
        assert (line["message"], line["request_id"], line["operation"]) == ("request", "log-auto-1", "Status")
        assert json.loads(forged)["path"] == "/x\r\nINFO graph.http: forged"
        print(f"\njson:     {request}")  # noqa: T201  (the line a container's collector reads; shown with -s)


def test_auto_decides_by_the_stream() -> None:
    reader, writer = pty.openpty()
    try:
        with open(writer, "w", closefd=False) as terminal:
            assert logs.resolve_format("auto", terminal) == "text"
            assert logs.resolve_format("json", terminal) == "json"  # a choice made is kept
    finally:
        os.close(reader)
        os.close(writer)
    assert logs.resolve_format("auto", io.StringIO()) == "json"
    assert logs.resolve_format("text", io.StringIO()) == "text"
    closed = io.StringIO()
    closed.close()
    assert logs.resolve_format("auto", closed) == "json"  # isatty() on a closed stream raises
    assert logs.resolve_format("auto", object()) == "json"  # no isatty() at all
