"""Alipay v2 signing, pure: no I/O, no clock, no transport.

The string to sign follows the Java SDK's ``AlipaySignature.getSignContent``: every parameter except
``sign`` (``sign_type`` included), entries with an empty value dropped, keys sorted by code point,
``k=v`` joined with ``&``, raw (not URL-encoded) values, UTF-8. The Python SDK keeps empty values,
which the gateway does not; we follow the gateway.
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# The gateway reads `timestamp` as Beijing time whatever the caller's zone (Java AlipayConstants.DATE_TIMEZONE).
SHANGHAI = ZoneInfo("Asia/Shanghai")
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


class SignType(enum.StrEnum):
    RSA2 = "RSA2"  # SHA256withRSA, the default and the only type Alipay recommends
    RSA = "RSA"  # SHA1withRSA, legacy apps only

    def hash(self) -> hashes.HashAlgorithm:
        return hashes.SHA256() if self is SignType.RSA2 else hashes.SHA1()  # noqa: S303  (the legacy protocol's hash)


def gateway_timestamp(now: datetime) -> str:
    """Format an aware instant as the gateway's ``timestamp`` parameter (Asia/Shanghai wall time)."""
    if now.utcoffset() is None:  # naive, or a tzinfo without an offset: astimezone would assume the machine's zone
        raise ValueError("gateway_timestamp needs an aware datetime")
    return now.astimezone(SHANGHAI).strftime(TIMESTAMP_FORMAT)


def sign_content(params: Mapping[str, str]) -> str:
    """The exact text Alipay signs for a parameter mapping."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k] != "")


def sign(data: bytes, key: rsa.RSAPrivateKey, sign_type: SignType) -> str:
    """PKCS#1 v1.5 signature of ``data``, base64 with padding and no line breaks."""
    return base64.b64encode(key.sign(data, padding.PKCS1v15(), sign_type.hash())).decode("ascii")


def sign_params(params: Mapping[str, str], key: rsa.RSAPrivateKey, sign_type: SignType) -> str:
    return sign(sign_content(params).encode("utf-8"), key, sign_type)


def verify(data: bytes, signature: str, key: rsa.RSAPublicKey, sign_type: SignType) -> bool:
    """True when ``signature`` (base64) is a valid signature of ``data``; never raises on bad input."""
    try:
        raw = base64.b64decode(signature.strip(), validate=True)
        key.verify(raw, data, padding.PKCS1v15(), sign_type.hash())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True
