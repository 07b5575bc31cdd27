"""Errors as GraphQL callers see them (docs/api.md, "Errors"): a message and ``extensions.code``.

Resolvers raise these; graphql-core copies ``extensions`` onto the located error. Anything else that
escapes a resolver is masked as ``INTERNAL_ERROR`` by ``graph.execution.masking``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from graph.gateway.errors import (
    BudgetSpent,
    CircuitOpen,
    GatewayError,
    GatewayProtocolError,
    GatewayResponseError,
    GatewayTransportError,
    SignatureError,
)


class GraphError(Exception):
    """An error whose message is safe to show callers."""

    code: ClassVar[str] = "INTERNAL_ERROR"

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extensions: dict[str, Any] = {"code": self.code, **extensions}


class BadUserInput(GraphError):
    code = "BAD_USER_INPUT"


class QueryTooComplex(GraphError):
    code = "QUERY_TOO_COMPLEX"


class AlipayBusinessError(GraphError):
    code = "ALIPAY_BUSINESS_ERROR"


class AlipayUnavailable(GraphError):
    code = "ALIPAY_UNAVAILABLE"


class AlipayBadSignature(GraphError):
    code = "ALIPAY_BAD_SIGNATURE"


def from_gateway(exc: GatewayError) -> GraphError:
    """The caller-facing error for a failed gateway call (retries already spent)."""
    if isinstance(exc, GatewayResponseError):
        cls = AlipayUnavailable if exc.retryable else AlipayBusinessError
        alipay = {"code": exc.code, "msg": exc.msg, "subCode": exc.sub_code, "subMsg": exc.sub_msg}
        return cls(str(exc), alipay=alipay)
    if isinstance(exc, SignatureError):
        return AlipayBadSignature(str(exc))
    if isinstance(exc, GatewayTransportError | GatewayProtocolError | CircuitOpen | BudgetSpent):
        return AlipayUnavailable(str(exc))
    return GraphError("internal error")  # pragma: no cover  (the tree above is exhaustive)
