"""Each GraphQL operation as telemetry sees it: a span, a count by name and outcome, a latency, error codes.

Listed first among the schema's extensions, so its span encloses parsing, validation, execution and the
other extensions, and it sees the errors as callers do (after masking).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from graph.observability.telemetry import Telemetry

# A GraphQL name; anything else a caller sends as operationName is logged as "invalid", never echoed.
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,99}")


class OperationTelemetry(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        ctx = self.execution_context
        telemetry: Telemetry = ctx.context.services.telemetry
        attributes = {"graphql.document": ctx.query} if telemetry.tracing.record_query_text and ctx.query else {}
        started = time.perf_counter()
        with telemetry.tracing.span("graphql.operation", attributes) as span:
            try:
                yield
            finally:
                name, kind = _name(ctx.operation_name), _kind(ctx)
                result = ctx.result
                outcome = _outcome(result.data if result else None, result.errors if result else None, result is None)
                span.rename(f"{kind} {name}" if name != "anonymous" else kind)
                span.set("graphql.operation.type", kind)
                span.set("graphql.operation.name", name)
                span.set("graphql.outcome", outcome)
                if outcome != "ok":
                    span.fail(outcome)
                codes = [_code(error) for error in (result.errors if result else None) or ()]
                telemetry.operation(name, outcome, time.perf_counter() - started, codes)


def _name(name: str | None) -> str:
    if name is None:
        return "anonymous"
    return name if _NAME.fullmatch(name) else "invalid"


def _kind(ctx: ExecutionContext) -> str:
    try:
        return str(ctx.operation_type.value)
    except Exception:  # no document (a syntax error) or no such operation: strawberry raises on asking
        return "operation"


def _outcome(data: dict[str, Any] | None, errors: list[GraphQLError] | None, missing: bool) -> str:
    if missing:
        return "error"
    if not errors:
        return "ok"
    return "partial" if data and any(value is not None for value in data.values()) else "error"


def _code(error: GraphQLError) -> str:
    code = (error.extensions or {}).get("code")
    if code is None:  # graphql-core's own errors about the document carry no code
        return "GRAPHQL_VALIDATION_FAILED" if error.original_error is None else "INTERNAL_ERROR"
    return str(code)
