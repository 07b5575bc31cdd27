"""What the client reports about each attempt, and to whom: an observer the service supplies.

The gateway package stays free of metrics and tracing libraries; the service passes an ``AttemptObserver``
that counts attempts, times them and opens a span around each. Nothing reported here carries parameters,
signatures or tokens: a method name, an attempt number, an outcome and a duration.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from graph.gateway.errors import (
    BusinessError,
    GatewayError,
    GatewayProtocolError,
    GatewayTransportError,
    GatewayUnavailable,
    SignatureError,
)

# Every outcome an attempt can have: a fixed set, so it can be a metric label.
OUTCOMES = ("success", "business_error", "unavailable", "transport_error", "protocol_error", "bad_signature", "error")


@dataclass(slots=True)
class Attempt:
    method: str
    number: int  # 1 for the first try, 2 for the first retry, ...
    outcome: str = "error"  # until the client says otherwise: an attempt cut short (cancelled, a bug) is an error
    duration_s: float = 0.0


class AttemptObserver(Protocol):
    def attempt(self, record: Attempt) -> AbstractContextManager[object]:
        """Entered before the request is signed and left when the attempt is over, ``record`` filled in."""
        ...


class NoObserver:
    def attempt(self, record: Attempt) -> AbstractContextManager[object]:
        return contextlib.nullcontext()


def outcome_of(error: GatewayError | None) -> str:
    if error is None:
        return "success"
    if isinstance(error, GatewayUnavailable):
        return "unavailable"
    if isinstance(error, BusinessError):
        return "business_error"
    if isinstance(error, GatewayTransportError):
        return "transport_error"
    if isinstance(error, SignatureError):
        return "bad_signature"
    if isinstance(error, GatewayProtocolError):
        return "protocol_error"
    return "error"
