"""The gateway client's errors: one tree, each class saying whether a retry may help.

    GatewayError                    base; ``retryable`` says whether the same request may be sent again
    ├── GatewayTransportError       timeout, refused or reset connection, HTTP 5xx        (retryable)
    ├── GatewayProtocolError        a body that is not a gateway answer (HTML, truncated JSON, no node)
    ├── SignatureError              an answer whose signature is missing, wrong or ambiguous (never used)
    ├── CircuitOpen                 not called at all: the gateway kept failing (circuit breaker open)
    ├── BudgetSpent                 not called at all: the merchant's calls for this minute are spent
    └── GatewayResponseError        a well-formed error answer: code, msg, sub_code, sub_msg
        ├── GatewayUnavailable      20000, 40005, sub_code SYSTEM_ERROR; v3: HTTP 5xx, 429   (retryable)
        └── BusinessError           any other code: the same request would fail the same way

A v3 error answer (HTTP 4xx/5xx with ``{code, message}``) fills the same fields: ``code`` is the HTTP
status, ``sub_code`` the answer's ``code``, ``msg`` and ``sub_msg`` its ``message``.

Messages carry no parameters, signatures or keys, only codes and what the gateway said.
"""

from __future__ import annotations

from typing import ClassVar

# Codes and sub_codes the gateway documents as "try again later".
RETRYABLE_CODES = frozenset({"20000", "40005"})
RETRYABLE_SUB_CODES = frozenset({"SYSTEM_ERROR", "ISP.UNKNOW-ERROR", "AOP.UNKNOW-ERROR", "ISV.APP-CALL-LIMITED"})
TOO_MANY_REQUESTS = 429


class GatewayError(Exception):
    retryable: ClassVar[bool] = False


class GatewayTransportError(GatewayError):
    retryable = True


class GatewayProtocolError(GatewayError):
    pass


class SignatureError(GatewayError):
    pass


class BudgetSpent(GatewayError):
    """The caller's ``admit`` refused the attempt: the merchant's upstream budget (ALIPAY_MAX_CALLS_PER_MIN) is
    spent, shared by every instance. Alipay's quotas are per app: past them it refuses every caller alike."""

    def __init__(self, retry_in_s: float) -> None:
        self.retry_in_s = retry_in_s
        super().__init__(
            "upstream budget spent: this merchant's gateway calls for the minute are used up"
            f" (ALIPAY_MAX_CALLS_PER_MIN); the gateway was not called (next call possible in {retry_in_s:.1f} s)"
        )


class GatewayResponseError(GatewayError):
    def __init__(self, code: str, msg: str, sub_code: str | None, sub_msg: str | None, *, signed: bool) -> None:
        self.code = code
        self.msg = msg
        self.sub_code = sub_code
        self.sub_msg = sub_msg
        self.signed = signed
        detail = f": {sub_code} {sub_msg}" if sub_code else ""
        super().__init__(f"gateway answered {code} {msg}{detail}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, sub_code={self.sub_code!r}, signed={self.signed})"


class GatewayUnavailable(GatewayResponseError):
    retryable = True


class BusinessError(GatewayResponseError):
    pass


def response_error(
    code: str, msg: str, sub_code: str | None, sub_msg: str | None, *, signed: bool
) -> GatewayResponseError:
    """The one place that decides which error answers may be retried."""
    retry = code in RETRYABLE_CODES or (sub_code or "").upper() in RETRYABLE_SUB_CODES
    cls = GatewayUnavailable if retry else BusinessError
    return cls(code, msg, sub_code, sub_msg, signed=signed)


def v3_response_error(status: int, code: str, message: str, *, signed: bool) -> GatewayResponseError:
    """The error for a v3 answer ``HTTP status {code, message}``; 5xx, 429 and busy codes may be retried."""
    retry = status >= 500 or status == TOO_MANY_REQUESTS or code.upper() in RETRYABLE_SUB_CODES
    cls = GatewayUnavailable if retry else BusinessError
    return cls(str(status), message, code, message, signed=signed)


class CircuitOpen(GatewayError):
    """The gateway failed too often lately: the call was refused without reaching it (``graph.gateway.breaker``)."""
