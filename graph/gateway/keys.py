"""RSA key loading: PEM (PKCS#1 or PKCS#8) or the bare base64 body Alipay's key tool prints.

Errors name the variable the key came from and never quote the key: a half-pasted private key in an
error message or a traceback is a leaked private key.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


class KeyLoadError(ValueError):
    """A key could not be read. The message names where it came from, never what it holds."""


_PEM_MARK = "-----BEGIN"


def _bare_der(text: str) -> bytes:
    # Users paste keys with line breaks and spaces; the body itself is plain base64.
    compact = "".join(text.split())
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None


def load_private_key(text: str, source: str) -> rsa.RSAPrivateKey:
    """Load an RSA private key from PEM or bare base64 DER (PKCS#1 or PKCS#8)."""
    try:
        stripped = text.strip()
        if stripped.startswith(_PEM_MARK):
            key = serialization.load_pem_private_key(stripped.encode("ascii"), password=None)
        else:
            key = serialization.load_der_private_key(_bare_der(stripped), password=None)
    except (ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm):  # Unsupported: e.g. an SM2 key
        key = None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyLoadError(f"{source}: not a readable RSA private key (expected PEM or bare base64, PKCS#1 or PKCS#8)")
    return key


def load_public_key(text: str, source: str) -> rsa.RSAPublicKey:
    """Load an RSA public key from PEM (SPKI or PKCS#1) or bare base64 SubjectPublicKeyInfo."""
    try:
        stripped = text.strip()
        if stripped.startswith(_PEM_MARK):
            key = serialization.load_pem_public_key(stripped.encode("ascii"))
        else:
            key = serialization.load_der_public_key(_bare_der(stripped))
    except (ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm):  # Unsupported: e.g. an SM2 key
        key = None
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyLoadError(
            f"{source}: not a readable RSA public key (expected PEM or bare base64 SubjectPublicKeyInfo)"
        )
    return key
