"""Scriptable faults: the ways a real gateway (or what stands between it and us) answers badly.

Each fault replaces the answer of a call that passed the gateway's request checks. Usage::

    gateway.fail_next(Fault.BUSY, times=2)
    gateway.fail_next(Fault.slow(3.0), app_version="0.0.1")
    gateway.fail_next(Fault.business_error("APPLICATION_TYPE_NOT_MINIAPP"))
"""

from __future__ import annotations

import enum
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from graph.sandbox.credentials import stranger_key
from graph.sandbox.wire import (
    ERROR_NODE,
    METHOD_NODE,
    SUB_MSG,
    Seal,
    Wire,
    body_text,
    error_node,
)


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
    WRONG_CERT_SN = enum.auto()  # signed, but naming another Alipay certificate (Alipay rotated its certificate)
    WRONG_ENCRYPT_KEY = enum.auto()  # signed, but encrypted with an AES key that is not the app's


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
    WRONG_CERT_SN: ClassVar[Fault]
    WRONG_ENCRYPT_KEY: ClassVar[Fault]

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

GARBAGE_PAGE = (
    '<!DOCTYPE html><html><head><meta charset="utf-8"><title>支付宝 - 网上支付 安全快速!</title></head>'
    "<body><p>系统繁忙,请稍后再试。</p></body></html>"
).encode()
BAD_GATEWAY_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>Tengine</center>\r\n</body>\r\n</html>\r\n"
)


# The SN of an Alipay certificate nobody configured: 32 hex digits, like every SN.
ROTATED_CERT_SN = "0123456789abcdef0123456789abcdef"


@functools.cache
def stranger_aes_key() -> bytes:
    """An AES key that is not the app's, for answers the client cannot decrypt."""
    return os.urandom(16)


def as_success(answer: Mapping[str, Any]) -> dict[str, Any]:
    node = {k: v for k, v in answer.items() if k not in ("sub_code", "sub_msg")}
    return {**node, "code": "10000", "msg": "Success"}


def forged(answer: Mapping[str, Any]) -> dict[str, Any]:
    """What a forger would like the client to read instead of ``answer``."""
    return {**as_success(answer), "app_name": "伪造的小程序", "status": "RELEASE"}


def tampered(text: str) -> str:
    """The same text with one letter's case flipped: as valid (JSON or base64) as before, different bytes."""
    # In a node, flip msg's first letter (same meaning); in a ciphertext, a letter past the middle.
    at = text.index('"msg":"') + len('"msg":"') if '"msg":"' in text else len(text) // 2
    while not text[at].isalpha():
        at += 1
    return text[:at] + text[at].swapcase() + text[at + 1 :]


def business_node(fault: Fault) -> dict[str, Any]:
    return error_node("40004", fault.sub_code, fault.sub_msg or SUB_MSG.get(fault.sub_code, fault.sub_code))


def render(fault: Fault, answer: Mapping[str, Any], seal: Seal, node_name: str = METHOD_NODE) -> Wire:
    """What goes on the wire instead of ``answer``, the ``node_name`` node the call would otherwise have got."""
    match fault.kind:
        case FaultKind.BUSY:
            return seal.wire(node_name, error_node("20000", "isp.unknow-error"))
        case FaultKind.SYSTEM_ERROR:
            return seal.wire(node_name, error_node("40004", "SYSTEM_ERROR"))
        case FaultKind.CALL_LIMITED:
            return seal.wire(node_name, error_node("40005", "isv.app-call-limited"))
        case FaultKind.BUSINESS_ERROR:
            return seal.wire(node_name, business_node(fault))
        case FaultKind.BAD_SIGNATURE:
            text = seal.text(answer)
            other = seal.sign(text + " ")
            return Wire(body_text(node_name, text, other, seal.cert_sn).encode("utf-8"), code=answer["code"])
        case FaultKind.TAMPERED:
            text = seal.text(answer)
            good = seal.sign(text)
            return Wire(body_text(node_name, tampered(text), good, seal.cert_sn).encode("utf-8"), code=answer["code"])
        case FaultKind.DUPLICATE_NODE:
            genuine = seal.wire(node_name, answer).body.decode("utf-8")
            body = f'{genuine[:-1]},"{node_name}":{seal.text(forged(answer))}}}'
            return Wire(body.encode("utf-8"), code=answer["code"])
        case FaultKind.UNSIGNED_SUCCESS:
            return seal.unsigned().wire(node_name, as_success(answer))
        case FaultKind.UNSIGNED_ERROR:
            return Seal(None).wire(ERROR_NODE, error_node("40002", "isv.invalid-app-id"))
        case FaultKind.GARBAGE_BODY:
            return Wire(GARBAGE_PAGE)
        case FaultKind.TRUNCATED_JSON:
            full = seal.wire(node_name, answer).body
            return Wire(full[: len(full) // 2])
        case FaultKind.HTTP_502:
            return Wire(BAD_GATEWAY_PAGE, status=502, content_type="text/html")
        case FaultKind.SLOW:
            return seal.wire(node_name, answer)
        case FaultKind.WRONG_KEY:
            return replace(seal, key=stranger_key()).wire(node_name, answer)
        case FaultKind.WRONG_CERT_SN:
            return replace(seal, cert_sn=ROTATED_CERT_SN).wire(node_name, answer)
        case FaultKind.WRONG_ENCRYPT_KEY:
            return replace(seal, encrypt_key=stranger_aes_key()).wire(node_name, answer)
