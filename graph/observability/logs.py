"""Logging set-up: one JSON object per line, or plain text (``auto``: text when stderr is a terminal), and no
secrets from libraries.

httpx logs every request URL at INFO; with ``app_auth_token`` in the query string that URL is a secret,
so its loggers stay at WARNING whatever GRAPH_LOG_LEVEL says. Every line written while a request is being
answered carries its ``request_id`` (a gateway attempt, a cache warning), so one id finds them all.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from datetime import UTC, datetime
from typing import Any

import orjson

from graph.observability import request_state as request

# Attributes every LogRecord has; anything else was passed through ``extra=`` and belongs in the line.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName", "color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        # orjson: one line per request is on the cached path, where the stdlib encoder cost ~5 µs of ~150.
        return orjson.dumps(line, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


class BatchingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes lines in batches: one write() per ``interval_s`` (or 64 KiB) instead of one per request line.

    WARNING and above are written at once, and everything is written at exit (logging.shutdown flushes).
    """

    def __init__(self, stream: Any, interval_s: float = 0.2) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        self._size = 0
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_periodically, name="log-flusher", daemon=True)
        self._flusher.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        self._pending.append(line)  # under the handler's lock: Handler.handle holds it around emit
        self._size += len(line)
        if record.levelno >= logging.WARNING or self._size >= 65536:
            self._write()

    def append(self, line: str) -> None:
        """A line formatted elsewhere (``RequestLines``), batched like the rest."""
        self.acquire()
        try:
            self._pending.append(line)
            self._size += len(line)
            if self._size >= 65536:
                self._write()
        finally:
            self.release()

    def flush(self) -> None:
        self.acquire()  # Handler.acquire: the lock Handler.handle holds around emit
        try:
            self._write()
        finally:
            self.release()

    def close(self) -> None:
        self._stop.set()
        self.flush()
        super().close()

    def _write(self) -> None:
        if not self._pending:
            return  # an idle flusher touches nothing (the stream may be gone, as under a test's capture)
        self.stream.write("".join(self._pending))
        self._pending.clear()
        self._size = 0
        self.stream.flush()

    def _flush_periodically(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.flush()


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class RequestLines:
    """The one line per request, written straight into the batching handler as JSON: the logging module's
    per-record machinery (caller lookup, record, filters, formatter) was the largest cost of a cached answer."""

    def __init__(self, handler: BatchingHandler) -> None:
        self._handler = handler

    def write(self, line: dict[str, Any]) -> None:
        head = {"time": _now_iso(), "level": "INFO", "logger": REQUEST_LOGGER, "message": "request"}
        text = orjson.dumps(head | line, default=str).decode() + "\n"
        self._handler.append(text)


REQUEST_LOGGER = "graph.http"
_request_log = logging.getLogger(REQUEST_LOGGER)
_lines: RequestLines | None = None


def request_line(line: dict[str, Any]) -> None:
    """Log one answered request (what ``graph.observability.telemetry`` gathered about it)."""
    if _lines is not None:
        _lines.write(line)
    elif _request_log.isEnabledFor(logging.INFO):
        _request_log.info("request", extra=line)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        state = request.current()
        if state is not None and not hasattr(record, "request_id"):
            record.request_id = state.request_id
        return True


# What could end a line or rewrite a terminal in a text log: C0 controls, DEL, C1 controls (NEL among them) and
# Unicode's line and paragraph separators. A request path is logged decoded: `%0d%0a` in it is a real CR LF.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def escape(text: str) -> str:
    """``text`` on one line: every control character written as a backslash escape."""
    return _CONTROL.sub(_escaped, text)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message key=value ...``, one line per record whatever the message and the values hold;
    a traceback follows on lines of its own, each indented, so none can pass for a record."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        record.asctime = self.formatTime(record)
        line = escape(self.formatMessage(record))
        extra = " ".join(f"{escape(k)}={escape(str(v))}" for k, v in vars(record).items() if k not in _STANDARD)
        if extra:
            line += f" {extra}"
        if record.exc_info:
            line += _indented(self.formatException(record.exc_info))
        if record.stack_info:
            line += _indented(self.formatStack(record.stack_info))
        return line


def _indented(text: str) -> str:
    return "".join(f"\n    {escape(part)}" for part in text.split("\n"))


def resolve_format(log_format: str, stream: Any) -> str:
    """``auto``: text for a person at a terminal, JSON for whatever reads a pipe or a file (containers, CI)."""
    if log_format != "auto":
        return log_format
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError):  # no isatty, or a closed stream: nobody is watching it
        return "json"


def configure(log_format: str = "auto", level: str = "INFO", *, batched: bool = False) -> None:
    """Send logs to stderr (stdout belongs to `query` and `export-schema` output). ``batched`` (the server):
    lines reach stderr within 0.2 s, a few writes a second instead of one per request."""
    global _lines
    log_format = resolve_format(log_format, sys.stderr)
    handler = BatchingHandler(sys.stderr) if batched else logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    # The fast path only where it writes what the logging module would: batched JSON, INFO enabled.
    fast = log_format == "json" and logging.getLevelName(level) <= logging.INFO
    _lines = RequestLines(handler) if fast and isinstance(handler, BatchingHandler) else None
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def flush() -> None:
    """Write out every handler's pending lines (the batching handler holds up to 0.2 s of them)."""
    for handler in logging.getLogger().handlers:
        handler.flush()
