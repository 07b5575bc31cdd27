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
    # original_error None: parse and validation errors written by graphql-core about the caller's document.
    return error.original_error is not None and not isinstance(error.original_error, GraphError)


class MaskInternalErrors(MaskErrors):
    def __init__(self) -> None:
        super().__init__(should_mask_error=_should_mask, error_message="Internal error")

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
