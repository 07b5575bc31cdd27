"""The secrets audit: every test runs with logging at DEBUG (root, httpx and httpcore included) captured, and
afterwards none of the session's secrets may be in what was logged (conftest's autouse ``_secrets_audit``).

Secrets are registered as they are made: private keys (any 32 characters of their base64 body), merchant
tokens, API keys, and every ``sign`` value that crossed the wire to or from the sandbox gateway (``WireSigns``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graph.observability.logs import JsonFormatter

WINDOW = 32  # a run of this many characters of a key's or a signature's base64 is a leak
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/=]{" + str(WINDOW) + ",}")
_SIGN_IN_BODY = re.compile(rb'"sign"\s*:\s*"([^"]+)"')


class Secrets:
    def __init__(self) -> None:
        self.plain: set[str] = set()  # tokens, API keys: looked for whole
        self.windows: set[str] = set()  # every WINDOW-long slice of base64 secrets (keys, signatures)
        self.signs: set[str] = set()  # signatures seen on the wire during the current test

    def add(self, *values: str) -> None:
        self.plain.update(v for v in values if v)

    def add_base64(self, text: str) -> None:
        """A PEM (its body) or a bare base64 value: any WINDOW characters of it count."""
        body = "".join(line.strip() for line in text.splitlines() if not line.startswith("-----"))
        self.windows.update(body[i : i + WINDOW] for i in range(len(body) - WINDOW + 1))

    def found_in(self, text: str) -> list[str]:
        """The secrets ``text`` holds, each shown by its first 6 characters only."""
        found = {s for s in self.plain if s in text}
        texts = (text, unquote(text))  # a sign in a URL is percent-encoded
        sign_windows = {sign[i : i + WINDOW] for sign in self.signs for i in range(len(sign) - WINDOW + 1)}
        for shown in texts:
            for run in _BASE64_RUN.findall(shown):
                for i in range(len(run) - WINDOW + 1):
                    window = run[i : i + WINDOW]
                    if window in self.windows or window in sign_windows:
                        found.add(window)
                        break
        return sorted(f"{s[:6]}..." for s in found)


SECRETS = Secrets()


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def capture_text(records: Iterable[logging.LogRecord]) -> str:
    formatter = JsonFormatter()
    return "\n".join(formatter.format(record) for record in records)


class WireSigns:
    """ASGI wrapper around the sandbox gateway: records each ``sign`` sent to it and each it answers with."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"").decode("latin-1")
            SECRETS.signs.update(value for name, value in parse_qsl(query) if name == "sign" and value)

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.body":
                SECRETS.signs.update(m.decode() for m in _SIGN_IN_BODY.findall(message.get("body", b"")))
            await send(message)

        await self.app(scope, receive, recording_send)
