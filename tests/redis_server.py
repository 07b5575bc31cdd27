"""A real redis-server for tests: started on a free loopback port, stoppable and restartable mid-test."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (apt-get install -y redis-server; .ci/run does it)")
        self.binary = binary
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--enable-debug-command",
                "yes",
            ],  # DEBUG SLEEP makes a slow Redis on demand
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while self.command("PING") != "+PONG":
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def command(self, *words: str) -> str | None:
        """One inline command over a raw socket, its first reply line (None when nobody answers)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall((" ".join(words) + "\r\n").encode())
                return conn.recv(65536).split(b"\r\n", 1)[0].decode()
        except OSError:
            return None

    def call(self, *args: str | bytes) -> bytes:
        """One command sent as a RESP array (binary safe: values may hold spaces, line breaks, any byte); the raw
        reply. A bulk reply's value is ``value_of(reply)``."""
        parts = [arg.encode() if isinstance(arg, str) else arg for arg in args]
        request = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
            conn.sendall(request)
            reply = b""
            while not _complete(reply) and (chunk := conn.recv(65536)):
                reply += chunk
        return reply

    def keys(self) -> int:
        reply = self.command("DBSIZE") or ":-1"
        return int(reply.lstrip(":"))


def _complete(reply: bytes) -> bool:
    """Whether a reply of one line, or a whole bulk reply ("$N", CRLF, N bytes, CRLF; nil is "$-1"), was read."""
    if not reply.endswith(b"\r\n"):
        return False
    header = reply.partition(b"\r\n")[0]
    size = int(header[1:]) if reply.startswith(b"$") else -1
    return len(reply) >= len(header) + 2 + (size + 2 if size >= 0 else 0)


def value_of(reply: bytes) -> bytes | None:
    """The value of a bulk reply (None for nil)."""
    header, _, rest = reply.partition(b"\r\n")
    size = int(header[1:])
    return None if size < 0 else rest[:size]
