"""What an app reports about itself: metrics, spans and one log line per request, from a few places.

``Telemetry`` is the one object the edge, the schema, the loaders and the gateway client (as its
``AttemptObserver``) report to. ``RequestTelemetry`` is the outermost ASGI layer: request id, in-flight
count, the server span (parented by the caller's ``traceparent``) and the request's log line.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
import secrets
import time
from collections.abc import Iterable, Iterator

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graph.gateway.attempts import Attempt
from graph.observability import logs, request_state as request
from graph.observability.metrics import BREAKER_STATES, Metrics, error_code_label, route_label
from graph.observability.request_state import RequestState
from graph.observability.tracing import AttributeValue, Tracing

log = logging.getLogger("graph.http")

REQUEST_ID_HEADER = "x-request-id"
# nginx's code for a request whose client closed the connection (or was closed by the read deadline) before an
# answer: counted apart from the 5xx of the service's own failures.
CLIENT_CLOSED = 499
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


class Telemetry:
    def __init__(self, metrics: Metrics | None = None, tracing: Tracing | None = None) -> None:
        self.metrics = metrics or Metrics()
        self.tracing = tracing or Tracing()

    @contextlib.contextmanager
    def attempt(self, record: Attempt) -> Iterator[None]:
        """One gateway call attempt (the client's ``AttemptObserver``): a span, metrics, the request's count."""
        metrics, state = self.metrics, request.current()
        metrics.gateway_in_flight.inc()
        attributes: dict[str, AttributeValue] = {
            "rpc.system": "alipay",
            "rpc.method": record.method,
            "alipay.attempt": record.number,
        }
        try:
            with self.tracing.span("alipay.gateway", attributes) as span:
                try:
                    yield
                finally:
                    span.set("alipay.outcome", record.outcome)
                    if record.outcome != "success":
                        span.fail(record.outcome)
        finally:
            metrics.gateway_in_flight.dec()
            metrics.gateway_calls.labels(record.method, record.outcome, str(record.number)).inc()
            metrics.gateway_seconds.labels(record.method, record.outcome).observe(record.duration_s)
            if state is not None:
                state.gateway_calls += 1

    def operation(self, name: str, outcome: str, duration_s: float, codes: Iterable[str] = ()) -> None:
        """An answered GraphQL operation: executed, or replayed from the response cache.

        ``name`` is the operation's name as logged ("anonymous", "invalid" or a GraphQL name); its metric label
        is that name only when GRAPH_METRICS_OPERATIONS lists it."""
        metrics = self.metrics
        label = metrics.operation_label(None if name == "anonymous" else name)
        metrics.operations.labels(label, outcome).inc()
        metrics.operation_seconds.labels(label).observe(duration_s)
        for code in codes:
            metrics.operation_errors.labels(error_code_label(code)).inc()
        state = request.current()
        if state is not None:
            state.operation, state.outcome = name, outcome

    def breaker(self, state: str) -> None:
        """The hook for a gateway circuit breaker: call it on every state change (closed, half_open, open)."""
        if state not in BREAKER_STATES:
            raise ValueError(f"unknown circuit breaker state {state!r}")
        self.metrics.breaker_state.state(state)


class RequestTelemetry:
    """Pure ASGI (no BaseHTTPMiddleware): no task per request, bodies never buffered."""

    def __init__(self, app: ASGIApp, *, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = value
                break
        request_id = given.decode("latin-1") if given and _REQUEST_ID.fullmatch(given) else _new_request_id()
        state = RequestState(request_id)
        token = request.begin(state)
        metrics, route, method = self.telemetry.metrics, route_label(scope["path"]), scope["method"]
        status = 0  # no answer yet
        trace_id: str | None = None
        id_header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), id_header]
            await send(message)

        async def answer() -> None:
            nonlocal status
            try:
                await self.app(scope, receive, send_with_id)
            except BaseException:
                status = status or 500
                raise
            status = status or CLIENT_CLOSED  # returned without answering: the client went away first

        started = time.perf_counter()
        metrics.http_in_flight.inc()
        try:
            tracing = self.telemetry.tracing
            if tracing.active:
                attributes = {"http.request.method": method, "http.route": route}
                # The propagator reads only its own headers (traceparent, tracestate by default) from the carrier.
                carrier = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
                with tracing.span(f"{method} {route}", attributes, carrier=carrier) as span:
                    trace_id = span.trace_id
                    await answer()
                    span.set("http.response.status_code", status)
                    if status >= 500:
                        span.fail(f"HTTP {status}")
            else:
                await answer()
        finally:
            metrics.http_in_flight.dec()
            metrics.answered(route, status)
            request.end(token)
            line = {
                "request_id": request_id,
                "method": method,
                "path": scope["path"],
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "operation": state.operation,
                "outcome": state.outcome or _outcome(status),
                "gateway_calls": state.gateway_calls,
                "cache_hits": state.cache_hits,
                "response_cache": state.response_cache,
            }
            if state.persisted_query is not None:  # only requests that carried a persisted query
                line["persisted_query"] = state.persisted_query
            if trace_id is not None:
                line["trace_id"] = trace_id
            logs.request_line(line)


# A random prefix per process and a counter: unique across instances, and ~10x cheaper than uuid4 per request.
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count(1)


def _new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def _outcome(status: int) -> str:
    return "ok" if status < 400 else "refused" if status < 500 else "error"
