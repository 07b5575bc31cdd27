"""OpenTelemetry spans when the ``otel`` extra is installed, and nothing at all when it is not.

Only the API is used: spans go wherever the process's tracer provider sends them (the one
``opentelemetry-instrument`` configures from the OTEL_* variables, or one passed to ``create_app``). With
the API but no provider, spans are non-recording and cost next to nothing. Callers' W3C ``traceparent``
headers are honoured through the configured propagator (trace context by default).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from graph import __version__

try:
    from opentelemetry import propagate, trace
except ImportError:  # the otel extra is not installed
    OTEL = False
else:
    OTEL = True

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

AttributeValue = str | int | float | bool


class Span:
    """The little of a span the service uses; every method is a no-op without OpenTelemetry."""

    def __init__(self, span: trace.Span | None = None) -> None:
        self._span = span

    def set(self, key: str, value: AttributeValue) -> None:
        if self._span is not None:
            self._span.set_attribute(key, value)

    def rename(self, name: str) -> None:
        if self._span is not None:
            self._span.update_name(name)

    def fail(self, description: str) -> None:
        if self._span is not None:
            self._span.set_status(trace.Status(trace.StatusCode.ERROR, description))

    @property
    def trace_id(self) -> str | None:
        """The trace id as the ``traceparent`` header writes it, when the span is recorded."""
        if self._span is None or not self._span.get_span_context().is_valid:
            return None
        return format(self._span.get_span_context().trace_id, "032x")


_NO_SPAN = Span()


class Tracing:
    def __init__(self, provider: TracerProvider | None = None, *, record_query_text: bool = False) -> None:
        self.record_query_text = record_query_text  # GRAPH_TRACE_QUERY_TEXT: documents may hold tokens in literals
        self._tracer = trace.get_tracer("alipay-miniapp-graph", __version__, tracer_provider=provider) if OTEL else None
        self._explicit = provider is not None

    @property
    def active(self) -> bool:
        """False while no tracer provider is configured: then spans would record nothing, and even a
        non-recording span costs ~15 µs per request on the cached path, so none is made."""
        if self._tracer is None:
            return False
        if self._explicit:
            return True
        provider = trace.get_tracer_provider()
        return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)

    @contextlib.contextmanager
    def span(
        self,
        name: str,
        attributes: Mapping[str, AttributeValue] | None = None,
        *,
        carrier: Mapping[str, str] | None = None,
    ) -> Iterator[Span]:
        """A span, current while the block runs. ``carrier``: incoming headers, making this a server span
        whose parent is the caller's ``traceparent`` (or a new trace)."""
        if self._tracer is None or not self.active:
            yield _NO_SPAN
            return
        parent = None if carrier is None else propagate.extract(carrier)
        kind = trace.SpanKind.INTERNAL if carrier is None else trace.SpanKind.SERVER
        with self._tracer.start_as_current_span(name, context=parent, kind=kind, attributes=attributes) as span:
            yield Span(span)
