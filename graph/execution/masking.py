"""Unexpected exceptions reach callers as ``INTERNAL_ERROR`` with a request id, and the log gets the detail."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from graph.errors import GraphError


def should_mask(error: GraphQLError) -> bool:
    """True for errors nobody wrote for callers (bugs, library failures): log them, show a code."""
    return _should_mask(error)


def _should_mask(error: GraphQLError) -> bool:
    # original_error None: parse and validation errors graphql-core wrote about the caller's document; a
    # GraphQLError: its words about the caller's variables (a wrong type, a missing value). Neither is our fault.
    return error.original_error is not None and not isinstance(error.original_error, GraphError | GraphQLError)


def _code(error: GraphQLError) -> str:
    """A code for graphql-core's own errors, which carry none (Apollo's names for them)."""
    if isinstance(error.original_error, GraphQLError):
        return "BAD_USER_INPUT"  # a variable's value does not fit its type
    if error.message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    return "GRAPHQL_VALIDATION_FAILED"


class MaskInternalErrors(MaskErrors):
    def __init__(self) -> None:
        super().__init__(should_mask_error=_should_mask, error_message="Internal error")

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = super()._process_errors(errors)
        for error in processed:
            if not (error.extensions or {}).get("code"):
                error.extensions = {**(error.extensions or {}), "code": _code(error)}
        return processed

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        context = self.execution_context.context
        request_id = _request_id(context)
        freshness = getattr(context, "freshness", None)
        if freshness is not None:
            freshness.cacheable = False  # a defect's outcome is never reused
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL_ERROR", "requestId": request_id}
        return masked


def _request_id(context: Any) -> str:
    return str(getattr(context, "request_id", "-"))
