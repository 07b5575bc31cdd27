"""A misbehaving network between the service and the sandbox gateway, on a real loopback port.

Modes (switchable mid-test): ``refuse`` (nobody listens: connection refused), ``reset`` (the answer's headers
and half its body, then a TCP reset), ``nested`` (a 200 whose JSON nests 100,000 deep), ``forward`` (a plain
proxy to the sandbox: the network healed). It counts the requests that reached it.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from typing import Literal

Mode = Literal["refuse", "reset", "nested", "forward"]

_NESTED = b'{"alipay_open_mini_version_detail_query_response":' + b"[" * 100_000 + b"]" * 100_000 + b',"sign":"x"}'


class FlakyLink:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        with socket.socket() as probe:  # a port that was free a moment ago: refused until the link listens
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.requests = 0
        self.mode: Mode = "refuse"
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/gateway.do"

    def set_mode(self, mode: Mode) -> None:
        self.mode = mode
        if mode == "refuse":
            self.close()
        elif self._listener is None:
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(64)
            self._listener = listener
            self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
            self._thread.start()

    def close(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            request = _read_request(conn)
            if request is None:
                return
            self.requests += 1
            if self.mode == "reset":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n")
                conn.sendall(b'{"alipay_open_mini_version_detail_query_response":{"code":"10000","msg":"Succ')
                # SO_LINGER 0: close() sends RST instead of FIN, the peer sees "connection reset" mid-body.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif self.mode == "nested":
                head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(_NESTED)}\r\n"
                conn.sendall(head.encode() + b"Connection: close\r\n\r\n" + _NESTED)
            else:
                conn.sendall(_forward(request, self.upstream_port))


def _read_request(conn: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    # One request a connection: ask the upstream to close after answering, so its answer ends at EOF.
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + body


def _forward(request: bytes, port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as upstream:
        upstream.sendall(request)
        answer = b""
        while chunk := upstream.recv(65536):
            answer += chunk
    return answer
