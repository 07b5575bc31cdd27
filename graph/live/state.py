"""One watched key's state as subscribers see it: the verified answer or the error item's facts, and a fingerprint.

Subscribers get an event only when the fingerprint changes: any field of the answer, an answer turning into an
error or back, or the answer turning stale (served from the cache while the gateway is unavailable) or fresh
again. An error that may pass (``ALIPAY_UNAVAILABLE``) is fingerprinted by its code alone: its message says what
failed this time (a timeout, a refused connection), and a gateway that stays down must not make an event a poll.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from graph.data.source import Fetched
from graph.errors import GraphError, from_gateway
from graph.gateway.errors import GatewayError


@dataclass(frozen=True, slots=True)
class State:
    value: dict[str, Any]  # {"node": the verified answer} or {"error": error_facts(...)}
    stale: bool  # the last good answer, served while the gateway is unavailable
    stored_at: float | None  # when the answer was fetched (epoch seconds), None when it was just fetched
    fingerprint: bytes

    @classmethod
    def of(cls, value: dict[str, Any], *, stale: bool = False, stored_at: float | None = None) -> State:
        error = value.get("error")
        if isinstance(error, dict) and error.get("retryable"):
            compared: Any = {"error": {"code": error.get("code")}}
        else:
            compared = value
        text = orjson.dumps([compared, stale], option=orjson.OPT_SORT_KEYS)
        return cls(value, stale, stored_at, hashlib.blake2b(text, digest_size=16).digest())

    @property
    def node(self) -> dict[str, Any] | None:
        node = self.value.get("node")
        return node if isinstance(node, dict) else None

    @property
    def error(self) -> dict[str, Any]:
        error = self.value.get("error")
        return error if isinstance(error, dict) else {}


def error_facts(error: GraphError) -> dict[str, Any]:
    """What a ``MiniAppVersionError`` item says about a failed call (its fields, by their Python names)."""
    alipay = error.extensions.get("alipay") or {}
    return {
        "code": error.code,
        "message": error.message,
        "sub_code": alipay.get("subCode"),
        "sub_message": alipay.get("subMsg"),
        "retryable": error.code == "ALIPAY_UNAVAILABLE",
    }


def state_of(fetched: Fetched) -> State:
    # Fetched.stale comes with the stale-if-error data path (issue 14); until then every answer is fresh.
    stale = bool(fetched.stale)
    if isinstance(fetched.outcome, GatewayError):
        return State.of({"error": error_facts(from_gateway(fetched.outcome))}, stored_at=fetched.stored_at)
    return State.of({"node": fetched.outcome}, stale=stale, stored_at=fetched.stored_at)
