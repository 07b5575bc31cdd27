"""The gateway's request checks, in the order Alipay applies them; each failure is a ``Refusal``."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from cryptography.hazmat.primitives.asymmetric import rsa

from graph.gateway import aes
from graph.gateway.methods import READ_METHODS
from graph.gateway.signing import SHANGHAI, TIMESTAMP_FORMAT, SignType, sign_content, verify
from graph.sandbox.seed import DEFAULT_BUNDLE_ID
from graph.sandbox.wire import SUB_MSG, error_node

_REQUIRED = (
    ("app_id", "isv.missing-app-id"),
    ("method", "isv.missing-method"),
    ("charset", "isv.missing-charset"),
    ("sign_type", "isv.missing-signature-type"),
    ("sign", "isv.missing-signature"),
    ("timestamp", "isv.missing-timestamp"),
    ("version", "isv.missing-version"),
)
# strptime alone would take "2026-1-2 3:04:05"; the gateway wants the zero-padded form.
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
_FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class App:
    """What Alipay keeps for one app."""

    public_key: rsa.RSAPublicKey = field(repr=False)  # checks the app's request signatures
    app_cert_sn: str | None = None  # certificate mode: the SN of the app's certificate (else public-key mode)
    encrypt_key: bytes | None = field(default=None, repr=False)  # AES content encryption, when configured


class Refusal(Exception):
    """An error answer the gateway gives instead of data."""

    def __init__(self, code: str, sub_code: str, sub_msg: str | None = None) -> None:
        super().__init__(sub_code)
        self.node = error_node(code, sub_code, sub_msg)

    @property
    def outcome(self) -> str:
        sub_code: str = self.node["sub_code"]
        return "business_error" if self.node["code"] == "40004" else sub_code.split(".", 1)[-1]


def merge_params(query: str, body: str, content_type: str) -> dict[str, str]:
    """Query string first, then the form body; the first value of a name wins, as a servlet's getParameter.

    A body that is not declared as a form is not read at all, as the servlet container would not parse it:
    a client posting ``biz_content`` as JSON finds that its signed parameters are not the ones received.
    """
    pairs = parse_qsl(query, keep_blank_values=True)
    if content_type.split(";", 1)[0].strip().lower() == _FORM:
        pairs += parse_qsl(body, keep_blank_values=True)
    params: dict[str, str] = {}
    for name, value in pairs:
        params.setdefault(name, value)
    return params


def sign_type_of(params: Mapping[str, str]) -> SignType | None:
    try:
        return SignType(params.get("sign_type", ""))
    except ValueError:
        return None


def parse_biz(raw: str | None) -> dict[str, Any] | None:
    """The biz_content object; ``{}`` when absent (the business checks then name what is missing), None if unusable."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def requested(biz: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    """(app_version, bundle_id) asked for: app_version None when blank, bundle_id None when not a string."""
    if biz is None:
        return None, None
    app_version = biz.get("app_version")
    bundle_id = biz.get("bundle_id", DEFAULT_BUNDLE_ID)
    if bundle_id == "":
        bundle_id = DEFAULT_BUNDLE_ID
    return (
        app_version if isinstance(app_version, str) and app_version.strip() else None,
        bundle_id if isinstance(bundle_id, str) else None,
    )


def biz_text(params: Mapping[str, str], apps: Mapping[str, App]) -> str | None:
    """``biz_content`` as the API reads it: decrypted when ``encrypt_type`` asks; a ``Refusal`` when it cannot be."""
    raw, encrypt_type = params.get("biz_content"), params.get("encrypt_type")
    if not encrypt_type:
        return raw
    if encrypt_type != "AES":
        raise Refusal("40002", "isv.decryption-error-not-valid-encrypt-type")
    app = apps.get(params.get("app_id", ""))
    if app is None or app.encrypt_key is None:
        raise Refusal("40002", "isv.decryption-error-not-valid-encrypt-key")
    try:
        return aes.decrypt(raw or "", app.encrypt_key)
    except aes.DecryptError:
        raise Refusal("40002", "isv.decryption-error-unknown") from None


def check_certs(app_cert_sn: str | None, alipay_root_cert_sn: str | None, app: App, root_cert_sn: str | None) -> None:
    """Certificate mode: the app names its certificate (which picks the key) and the roots it trusts."""
    if app.app_cert_sn is None:  # a public-key-mode app: certificate parameters are not looked at
        return
    if not app_cert_sn:
        raise Refusal("40001", "isv.missing-app-cert-sn")
    if app_cert_sn != app.app_cert_sn:
        raise Refusal("40002", "isv.invalid-app-cert-sn")
    if not alipay_root_cert_sn:
        raise Refusal("40001", "isv.missing-alipay-root-cert-sn")
    if alipay_root_cert_sn != root_cert_sn:
        raise Refusal("40002", "isv.invalid-alipay-root-cert-sn")


def check_protocol(
    params: Mapping[str, str],
    biz: Mapping[str, Any] | None,
    *,
    apps: Mapping[str, App],
    auth_tokens: Collection[str],
    now: datetime,
    tolerance_s: float,
    root_cert_sn: str | None = None,
    biz_refusal: Refusal | None = None,
) -> None:
    """Everything the gateway checks before the API itself runs. Empty values count as absent, as in signing.

    ``biz_refusal`` is why ``biz_content`` could not be decrypted; it is reported once the request is
    known to be genuine, as the gateway decrypts after checking the signature."""
    for name, sub_code in _REQUIRED:
        if not params.get(name):
            raise Refusal("40001", sub_code)
    app = apps.get(params["app_id"])
    if app is None:
        raise Refusal("40002", "isv.invalid-app-id")
    if params.get("format") and params["format"].lower() != "json":
        raise Refusal("40002", "isv.invalid-format")
    if params["charset"].lower() != "utf-8":
        raise Refusal("40002", "isv.invalid-charset")
    if params["version"] != "1.0":
        raise Refusal("40002", "isv.invalid-version")
    # Exact case: the SDKs send "RSA2"/"RSA" (the API doc's lower case is a transcription artefact).
    sign_type = sign_type_of(params)
    if sign_type is None:
        raise Refusal("40002", "isv.invalid-signature-type")
    if not _timestamp_ok(params["timestamp"], now, tolerance_s):
        raise Refusal("40002", "isv.invalid-timestamp")
    check_certs(params.get("app_cert_sn"), params.get("alipay_root_cert_sn"), app, root_cert_sn)
    content = sign_content(params)
    if not verify(content.encode("utf-8"), params["sign"], app.public_key, sign_type):
        raise Refusal("40002", "isv.invalid-signature", _bad_signature_msg(params))
    if params["method"] not in READ_METHODS:
        raise Refusal("40002", "isv.invalid-method")
    token = params.get("app_auth_token")
    if token and token not in auth_tokens:
        raise Refusal("20001", "aop.invalid-app-auth-token")
    if biz_refusal is not None:
        raise biz_refusal
    if biz is None:
        raise Refusal("40002", "isv.invalid-biz-content")


def _timestamp_ok(text: str, now: datetime, tolerance_s: float) -> bool:
    if not _TIMESTAMP.fullmatch(text):
        return False
    try:
        # Beijing wall time whatever the caller's zone: a client formatting its own (e.g. UTC) clock is 8 h off.
        sent = datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=SHANGHAI)
    except ValueError:  # well-formed but not a date, e.g. month 13
        return False
    return abs((sent - now).total_seconds()) <= tolerance_s


def _bad_signature_msg(params: Mapping[str, str]) -> str:
    # Like Alipay, echo the string the gateway verified, so a developer can diff it with theirs. Unlike
    # Alipay, mask the merchant token: error texts end up in logs and GraphQL error extensions.
    shown = {**params, "app_auth_token": "***"} if params.get("app_auth_token") else params
    return f"{SUB_MSG['isv.invalid-signature']},网关生成的验签字符串为:{sign_content(shown)}"


def find_version(
    versions: Mapping[tuple[str, str], Mapping[str, Any]],
    bundle_ids: Collection[str],
    app_version: str | None,
    bundle_id: str | None,
) -> Mapping[str, Any]:
    if app_version is None:
        raise Refusal("40004", "APP_VERSION_IS_BLANK")
    if bundle_id is None or bundle_id not in bundle_ids:
        raise Refusal("40004", "BUNDLE_ID_NOT_EXIST")
    record = versions.get((app_version, bundle_id))
    if record is None:
        # The API's doc lists no code for a version that does not exist; this one is ours, named in its style.
        raise Refusal("40004", "VERSION_NOT_EXIST")
    return record
