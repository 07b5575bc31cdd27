"""Throw-away RSA keys for ``serve --demo`` and the tests: made in memory, never written anywhere."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# Shaped like a real app id (16 digits, 2021… for apps created since 2021) so length checks downstream hold.
DEMO_APP_ID = "2021000000000000"


@dataclass(frozen=True)
class DemoCredentials:
    """Both halves of both key pairs: what the app holds, and what Alipay holds for that app."""

    app_id: str
    app_private_key_pem: str = field(repr=False)  # PKCS#8 PEM, as users store it
    app_public_key: rsa.RSAPublicKey = field(repr=False)  # what the gateway checks request signatures with
    alipay_private_key: rsa.RSAPrivateKey = field(repr=False)  # what the gateway signs answers with
    alipay_public_key_pem: str = field(repr=False)  # SPKI PEM, what the client verifies answers with


def new_rsa_key() -> rsa.RSAPrivateKey:
    # Alipay issues and accepts 2048-bit keys; a smaller one would hide length bugs in base64 signatures.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def generate_credentials(app_id: str = DEMO_APP_ID) -> DemoCredentials:
    app_key = new_rsa_key()
    alipay_key = new_rsa_key()
    return DemoCredentials(
        app_id=app_id,
        app_private_key_pem=app_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode("ascii"),
        app_public_key=app_key.public_key(),
        alipay_private_key=alipay_key,
        alipay_public_key_pem=alipay_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii"),
    )


@functools.cache
def stranger_key() -> rsa.RSAPrivateKey:
    """A key nobody verifies with, for answers signed by the wrong party; made once, on first use (~50 ms)."""
    return new_rsa_key()
