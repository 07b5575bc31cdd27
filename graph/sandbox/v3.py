"""The sandbox's v3 (OpenAPI 3) side: ``GET /v3/alipay/open/mini/version/detail/query``.

Checks, in order: the ``Authorization`` header (scheme and fields), the app, the timestamp (milliseconds,
within the tolerance), certificate mode (``app_cert_sn`` in the auth string, the ``alipay-root-cert-sn``
header), the signature over ``authString\\nMETHOD\\npath?query\\nbody\\n[token\\n]`` with ``path?query`` as
received, the merchant token, the ``alipay-encrypt-type`` header. Every answer to a known app is signed over
``alipay-timestamp\\nalipay-nonce\\nbody\\n``; a success asked for with AES comes back as the bare base64
ciphertext, errors as plain ``{code, message}``. The HTTP status and ``code`` of the gateway's own refusals
are the sandbox's choice (the v2 sub_codes, under the status their meaning suggests): the public v3 error
list was not at hand.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from graph.gateway import aes
from graph.gateway.signing import SignType, sign, verify
from graph.gateway.v3 import (
    APP_AUTH_TOKEN_HEADER,
    AUTH_SCHEME,
    CERT_SN_HEADER,
    ENCRYPT_TYPE_HEADER,
    NONCE_HEADER,
    ROOT_CERT_SN_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    request_sign_content,
    response_sign_content,
)
from graph.sandbox.checks import App, Refusal, check_certs
from graph.sandbox.credentials import stranger_key
from graph.sandbox.faults import (
    BAD_GATEWAY_PAGE,
    GARBAGE_PAGE,
    ROTATED_CERT_SN,
    Fault,
    FaultKind,
    as_success,
    business_node,
    forged,
    stranger_aes_key,
    tampered,
)
from graph.sandbox.wire import Wire, error_node, node_text

JSON_TYPE = "application/json; charset=utf-8"
_STATUS = {
    "10000": 200,
    "20000": 503,
    "20001": 401,
    "40001": 400,
    "40002": 400,
    "40004": 400,
    "40005": 429,
    "40006": 403,
}
# Refusals that say "we do not know who you are", rather than "your request is malformed".
_UNAUTHORIZED = frozenset(
    {"isv.missing-signature", "isv.invalid-signature", "isv.invalid-signature-type", "isv.invalid-app-id"}
)
_MILLIS = re.compile(r"[0-9]{13}")


def status_of(node: Mapping[str, Any]) -> int:
    if node.get("sub_code") in _UNAUTHORIZED:
        return 401
    return _STATUS.get(node["code"], 400)


def payload(node: Mapping[str, Any]) -> dict[str, Any]:
    """A v2 answer node as v3 writes it: the bare fields, or ``{code, message}``."""
    if node["code"] == "10000":
        return {k: v for k, v in node.items() if k not in ("code", "msg")}
    return {"code": node["sub_code"], "message": node["sub_msg"]}


@dataclass(frozen=True)
class Authorization:
    auth_string: str  # exactly as sent: what the signature covers
    fields: Mapping[str, str]
    sign: str = field(repr=False)


def parse_authorization(value: str | None) -> Authorization:
    if not value:
        raise Refusal("40001", "isv.missing-signature")
    scheme, _, rest = value.partition(" ")
    if scheme != AUTH_SCHEME:
        raise Refusal("40002", "isv.invalid-signature-type")
    auth, found, signature = rest.rpartition(",sign=")
    if not found or not signature:
        raise Refusal("40001", "isv.missing-signature")
    fields = {}
    for part in auth.split(","):
        name, _, text = part.partition("=")
        fields[name.strip()] = text
    return Authorization(auth, fields, signature)


def check_request(
    method: str,
    path_query: str,
    body: str,
    headers: Mapping[str, str],
    *,
    apps: Mapping[str, App],
    auth_tokens: Collection[str],
    now: datetime,
    tolerance_s: float,
    root_cert_sn: str | None,
) -> App:
    """Everything the gateway checks before the API runs; the app on success, a ``Refusal`` otherwise."""
    auth = parse_authorization(headers.get("authorization"))
    fields = auth.fields
    for name, sub_code in (("app_id", "isv.missing-app-id"), ("timestamp", "isv.missing-timestamp")):
        if not fields.get(name):
            raise Refusal("40001", sub_code)
    if not fields.get("nonce"):
        raise Refusal("40001", "isv.missing-nonce")
    app = apps.get(fields["app_id"])
    if app is None:
        raise Refusal("40002", "isv.invalid-app-id")
    if not _timestamp_ok(fields["timestamp"], now, tolerance_s):
        raise Refusal("40002", "isv.invalid-timestamp")
    check_certs(fields.get("app_cert_sn"), headers.get(ROOT_CERT_SN_HEADER), app, root_cert_sn)
    token = headers.get(APP_AUTH_TOKEN_HEADER) or None
    content = request_sign_content(auth.auth_string, method, path_query, body, token)
    if not verify(content.encode("utf-8"), auth.sign, app.public_key, SignType.RSA2):
        raise Refusal("40002", "isv.invalid-signature")
    if token and token not in auth_tokens:
        raise Refusal("20001", "aop.invalid-app-auth-token")
    encrypt_type = headers.get(ENCRYPT_TYPE_HEADER)
    if encrypt_type and encrypt_type != "AES":
        raise Refusal("40002", "isv.decryption-error-not-valid-encrypt-type")
    if encrypt_type and app.encrypt_key is None:
        raise Refusal("40002", "isv.decryption-error-not-valid-encrypt-key")
    return app


def _timestamp_ok(text: str, now: datetime, tolerance_s: float) -> bool:
    # Epoch milliseconds: no time zone to get wrong, unlike v2's Beijing wall time.
    return bool(_MILLIS.fullmatch(text)) and abs(int(text) / 1000 - now.timestamp()) <= tolerance_s


@dataclass(frozen=True)
class V3Seal:
    """How the gateway signs (and, when asked, encrypts) its v3 answers to one request."""

    key: rsa.RSAPrivateKey | None = field(repr=False)  # None: unsigned, as for an app the gateway does not know
    now: datetime
    encrypt_key: bytes | None = field(default=None, repr=False)  # set when the request asked for AES
    cert_sn: str | None = None  # certificate mode: the alipay-sn header

    def body(self, node: Mapping[str, Any]) -> str:
        text = node_text(payload(node))
        if self.encrypt_key is None or node["code"] != "10000":
            return text
        return aes.encrypt(text, self.encrypt_key)

    def headers(self, body: str, *, signed_body: str | None = None) -> dict[str, str]:
        """The signature headers for ``body`` (or, for faults, for other bytes than the body)."""
        if self.key is None:
            return {}
        timestamp, nonce = str(int(self.now.timestamp() * 1000)), str(uuid.uuid4())
        content = response_sign_content(timestamp, nonce, body if signed_body is None else signed_body)
        headers = {
            TIMESTAMP_HEADER: timestamp,
            NONCE_HEADER: nonce,
            SIGNATURE_HEADER: sign(content.encode("utf-8"), self.key, SignType.RSA2),
        }
        if self.cert_sn:
            headers[CERT_SN_HEADER] = self.cert_sn
        return headers

    def wire(self, node: Mapping[str, Any]) -> Wire:
        body = self.body(node)
        return _wire(node, body, self.headers(body))


def _wire(node: Mapping[str, Any], body: str, headers: Mapping[str, str]) -> Wire:
    encrypted = node["code"] == "10000" and not body.startswith("{")
    return Wire(
        body.encode("utf-8"),
        status=status_of(node),
        content_type="text/plain; charset=utf-8" if encrypted else JSON_TYPE,
        code=node["code"],
        sub_code=node.get("sub_code"),
        headers=headers,
    )


def render(fault: Fault, answer: Mapping[str, Any], seal: V3Seal) -> Wire:
    """What goes on the wire instead of ``answer`` (a v2-shaped node), the v3 way."""
    match fault.kind:
        case FaultKind.BUSY:
            return seal.wire(error_node("20000", "isp.unknow-error"))
        case FaultKind.SYSTEM_ERROR:
            return seal.wire(error_node("40004", "SYSTEM_ERROR"))
        case FaultKind.CALL_LIMITED:
            return seal.wire(error_node("40005", "isv.app-call-limited"))
        case FaultKind.BUSINESS_ERROR:
            return seal.wire(business_node(fault))
        case FaultKind.BAD_SIGNATURE:
            body = seal.body(answer)
            return _wire(answer, body, seal.headers(body, signed_body=body + " "))
        case FaultKind.TAMPERED:
            body = seal.body(answer)
            return _wire(answer, tampered(body), seal.headers(body))
        case FaultKind.DUPLICATE_NODE:
            # v3 signs the whole body, so a forged object after the genuine one cannot verify.
            body = seal.body(answer)
            return _wire(answer, body + node_text(payload(forged(answer))), seal.headers(body))
        case FaultKind.UNSIGNED_SUCCESS:
            return replace(seal, key=None).wire(as_success(answer))
        case FaultKind.UNSIGNED_ERROR:
            return replace(seal, key=None, cert_sn=None).wire(error_node("40002", "isv.invalid-app-id"))
        case FaultKind.GARBAGE_BODY:
            return Wire(GARBAGE_PAGE, content_type="text/html;charset=utf-8")
        case FaultKind.TRUNCATED_JSON:
            body = seal.body(answer)
            return _wire(answer, body[: len(body) // 2], seal.headers(body))
        case FaultKind.HTTP_502:
            return Wire(BAD_GATEWAY_PAGE, status=502, content_type="text/html")
        case FaultKind.SLOW:
            return seal.wire(answer)
        case FaultKind.WRONG_KEY:
            return replace(seal, key=stranger_key()).wire(answer)
        case FaultKind.WRONG_CERT_SN:
            return replace(seal, cert_sn=ROTATED_CERT_SN).wire(answer)
        case FaultKind.WRONG_ENCRYPT_KEY:
            return replace(seal, encrypt_key=stranger_aes_key()).wire(answer)
