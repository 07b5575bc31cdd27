"""Running one parsed request on the schema: the one path every operation that reaches the executor takes.

The GraphQL spec's response rules decide the shape: a request that fails before execution (a syntax or
validation error, an unknown operation, a variable that does not coerce, a limit refusing the operation whole)
answers ``errors`` and no ``data`` key; once execution started, ``data`` is always there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError
from strawberry.exceptions import MissingQueryError
from strawberry.schema.base import BaseSchema
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.types.graphql import OperationType

from graph.http.request import GraphQLRequest, RequestError
from resolvers.context import Context

_GET_OPERATIONS = (OperationType.QUERY,)
_POST_OPERATIONS = (OperationType.QUERY, OperationType.MUTATION)


@dataclass(frozen=True, slots=True)
class Executed:
    result: dict[str, Any]  # data (unless it failed before execution), errors, extensions
    before_execution: bool  # failed before execution: no data key; HTTP 400 under graphql-response+json
    codes: tuple[str, ...]  # extensions.code of each error


async def execute(schema: BaseSchema, request: GraphQLRequest, context: Context) -> Executed:
    """Raises ``RequestError`` for what is not a runnable request at all (no query; a mutation by GET)."""
    if not request.query:
        raise RequestError(400, "no GraphQL query found in the request: send `query`")
    allowed = _GET_OPERATIONS if request.method == "GET" else _POST_OPERATIONS
    try:
        result = await schema.execute(
            request.query,
            # A copy: a resolver (or graphql-core's coercion) must not change what the request object holds.
            variable_values=dict(request.variables) if request.variables else None,
            context_value=context,
            operation_name=request.operation_name,
            allowed_operation_types=allowed,
        )
    except InvalidOperationTypeError as exc:
        if request.method == "GET" and exc.operation_type == OperationType.MUTATION:
            raise RequestError(405, "mutations are not allowed over GET: use POST", {"allow": "POST"}) from None
        raise RequestError(400, f"{exc.operation_type.value} operations are not served over HTTP requests") from None
    except CannotGetOperationTypeError as exc:
        if exc.operation_name is None:
            return _refused("the document holds several operations (or none): name one with `operationName`")
        return _refused(f"the document has no operation named {exc.operation_name[:100]!r}")
    except MissingQueryError:  # pragma: no cover  (an empty query is refused above)
        raise RequestError(400, "no GraphQL query found in the request: send `query`") from None
    return _executed(result)


def _executed(result: ExecutionResult) -> Executed:
    errors: Sequence[GraphQLError] = result.errors or ()
    before = isinstance(result, PreExecutionError) or (
        # graphql-core answers a variable that does not coerce with data None and errors without a path: nothing
        # ran. An error raised by a field always has a path.
        result.data is None and bool(errors) and all(error.path is None for error in errors)
    )
    body: dict[str, Any] = {} if before else {"data": result.data}
    if errors:
        body["errors"] = [error.formatted for error in errors]
    if result.extensions:
        body["extensions"] = result.extensions
    codes = tuple(str((error.extensions or {}).get("code", "INTERNAL_ERROR")) for error in errors)
    return Executed(body, before, codes)


def _refused(message: str) -> Executed:
    # Strawberry raises for an unknown operation name (or several operations and no name); the GraphQL spec calls
    # it a request error like a validation failure.
    error = {"message": message, "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}
    return Executed({"errors": [error]}, True, ("GRAPHQL_VALIDATION_FAILED",))
