"""Scriptable faults: the ways a real gateway (or what stands between it and us) answers badly.

Each fault replaces the answer of a call that passed the gateway's request checks. Usage::

    gateway.fail_next(Fault.BUSY, times=2)
    gateway.fail_next(Fault.slow(3.0), app_version="0.0.1")
    gateway.fail_next(Fault.business_error("APPLICATION_TYPE_NOT_MINIAPP"))
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from cryptography.hazmat.primitives.asymmetric import rsa

from graph.gateway.sandbox.credentials import stranger_key
from graph.gateway.sandbox.wire import (
    ERROR_NODE,
    METHOD_NODE,
    SUB_MSG,
    Wire,
    body_text,
    error_node,
    node_text,
    signed,
)
from graph.gateway.signing import SignType, sign


class FaultKind(enum.Enum):
    BUSY = enum.auto()  # 20000 isp.unknow-error, signed: retry
    SYSTEM_ERROR = enum.auto()  # 40004 SYSTEM_ERROR, signed: retry (the only retryable 40004)
    CALL_LIMITED = enum.auto()  # 40005 isv.app-call-limited, signed: retry with backoff
    BUSINESS_ERROR = enum.auto()  # 40004 with a chosen sub_code, signed: do not retry
    BAD_SIGNATURE = enum.auto()  # the right answer, a well-formed sign over other bytes
    TAMPERED = enum.auto()  # signed, then one character of the node changed in transit
    DUPLICATE_NODE = enum.auto()  # signed node, sign, then a forged node of the same name (python-alipay-sdk #69)
    UNSIGNED_SUCCESS = enum.auto()  # a code 10000 node with no sign: never data
    UNSIGNED_ERROR = enum.auto()  # error_response without sign (40002 isv.invalid-app-id): an error, not data
    GARBAGE_BODY = enum.auto()  # an HTML page with status 200
    TRUNCATED_JSON = enum.auto()  # the signed body cut in half (mid UTF-8 sequence if it falls there)
    HTTP_502 = enum.auto()  # the load balancer's HTML error page
    SLOW = enum.auto()  # the normal answer, after a delay
    WRONG_KEY = enum.auto()  # signed with a key that is not Alipay's (the mirror of verifying with the app's key)


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    delay_s: float = 0.0  # SLOW only
    sub_code: str = "APPLICATION_TYPE_NOT_MINIAPP"  # BUSINESS_ERROR only
    sub_msg: str | None = None  # BUSINESS_ERROR only; None takes the doc's text for sub_code

    BUSY: ClassVar[Fault]
    SYSTEM_ERROR: ClassVar[Fault]
    CALL_LIMITED: ClassVar[Fault]
    BUSINESS_ERROR: ClassVar[Fault]
    BAD_SIGNATURE: ClassVar[Fault]
    TAMPERED: ClassVar[Fault]
    DUPLICATE_NODE: ClassVar[Fault]
    UNSIGNED_SUCCESS: ClassVar[Fault]
    UNSIGNED_ERROR: ClassVar[Fault]
    GARBAGE_BODY: ClassVar[Fault]
    TRUNCATED_JSON: ClassVar[Fault]
    HTTP_502: ClassVar[Fault]
    SLOW: ClassVar[Fault]
    WRONG_KEY: ClassVar[Fault]

    def __post_init__(self) -> None:
        if self.delay_s < 0:
            raise ValueError("delay_s must be >= 0")

    @property
    def name(self) -> str:
        return self.kind.name

    @classmethod
    def slow(cls, delay_s: float) -> Fault:
        return cls(FaultKind.SLOW, delay_s=delay_s)

    @classmethod
    def business_error(cls, sub_code: str, sub_msg: str | None = None) -> Fault:
        return cls(FaultKind.BUSINESS_ERROR, sub_code=sub_code, sub_msg=sub_msg)


for _kind in FaultKind:
    setattr(Fault, _kind.name, Fault(_kind))
Fault.SLOW = Fault.slow(1.0)  # long enough to trip a test's short client timeout, short enough not to hang it

_GARBAGE_PAGE = (
    '<!DOCTYPE html><html><head><meta charset="utf-8"><title>支付宝 - 网上支付 安全快速!</title></head>'
    "<body><p>系统繁忙,请稍后再试。</p></body></html>"
).encode()
_BAD_GATEWAY_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>Tengine</center>\r\n</body>\r\n</html>\r\n"
)


def _as_success(answer: Mapping[str, Any]) -> dict[str, Any]:
    node = {k: v for k, v in answer.items() if k not in ("sub_code", "sub_msg")}
    return {**node, "code": "10000", "msg": "Success"}


def render(fault: Fault, answer: Mapping[str, Any], key: rsa.RSAPrivateKey, sign_type: SignType) -> Wire:
    """What goes on the wire instead of ``answer``, the node the call would otherwise have got."""
    match fault.kind:
        case FaultKind.BUSY:
            return signed(METHOD_NODE, error_node("20000", "isp.unknow-error"), key, sign_type)
        case FaultKind.SYSTEM_ERROR:
            return signed(METHOD_NODE, error_node("40004", "SYSTEM_ERROR"), key, sign_type)
        case FaultKind.CALL_LIMITED:
            return signed(METHOD_NODE, error_node("40005", "isv.app-call-limited"), key, sign_type)
        case FaultKind.BUSINESS_ERROR:
            sub_msg = fault.sub_msg or SUB_MSG.get(fault.sub_code, fault.sub_code)
            return signed(METHOD_NODE, error_node("40004", fault.sub_code, sub_msg), key, sign_type)
        case FaultKind.BAD_SIGNATURE:
            text = node_text(answer)
            other = sign((text + " ").encode("utf-8"), key, sign_type)
            return Wire(body_text(METHOD_NODE, text, other).encode("utf-8"), code=answer["code"])
        case FaultKind.TAMPERED:
            text = node_text(answer)
            good = sign(text.encode("utf-8"), key, sign_type)
            # Flip the case of msg's first letter: still valid JSON, still the same meaning, different bytes.
            at = text.index('"msg":"') + len('"msg":"')
            text = text[:at] + text[at].swapcase() + text[at + 1 :]
            return Wire(body_text(METHOD_NODE, text, good).encode("utf-8"), code=answer["code"])
        case FaultKind.DUPLICATE_NODE:
            genuine = signed(METHOD_NODE, answer, key, sign_type).body.decode("utf-8")
            forged = node_text({**_as_success(answer), "app_name": "伪造的小程序", "status": "RELEASE"})
            body = f'{genuine[:-1]},"{METHOD_NODE}":{forged}}}'
            return Wire(body.encode("utf-8"), code=answer["code"])
        case FaultKind.UNSIGNED_SUCCESS:
            return signed(METHOD_NODE, _as_success(answer), None, sign_type)
        case FaultKind.UNSIGNED_ERROR:
            return signed(ERROR_NODE, error_node("40002", "isv.invalid-app-id"), None, sign_type)
        case FaultKind.GARBAGE_BODY:
            return Wire(_GARBAGE_PAGE)
        case FaultKind.TRUNCATED_JSON:
            full = signed(METHOD_NODE, answer, key, sign_type).body
            return Wire(full[: len(full) // 2])
        case FaultKind.HTTP_502:
            return Wire(_BAD_GATEWAY_PAGE, status=502, content_type="text/html")
        case FaultKind.SLOW:
            return signed(METHOD_NODE, answer, key, sign_type)
        case FaultKind.WRONG_KEY:
            return signed(METHOD_NODE, answer, stranger_key(), sign_type)
