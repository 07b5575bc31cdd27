"""RSA keys for the signing, key-loading and config tests, generated once per session (no key material in the repo).

Import the fixtures into a test module with ``from tests.keyfixtures import app_keys, other_keys``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.secrets_audit import SECRETS

_PEM = serialization.Encoding.PEM


def pem_body(pem: str) -> str:
    """The bare base64 body of a PEM block, on one line (what Alipay's key tool prints)."""
    return "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))


@dataclass(frozen=True)
class KeyMaterial:
    """One RSA key pair in every text form a user may paste."""

    private: rsa.RSAPrivateKey
    public: rsa.RSAPublicKey
    pkcs1_pem: str  # -----BEGIN RSA PRIVATE KEY-----
    pkcs8_pem: str  # -----BEGIN PRIVATE KEY-----
    spki_pem: str  # -----BEGIN PUBLIC KEY-----
    pkcs1_public_pem: str  # -----BEGIN RSA PUBLIC KEY-----

    @property
    def pkcs1_b64(self) -> str:
        return pem_body(self.pkcs1_pem)

    @property
    def pkcs8_b64(self) -> str:
        return pem_body(self.pkcs8_pem)

    @property
    def spki_b64(self) -> str:
        return pem_body(self.spki_pem)

    @classmethod
    def generate(cls) -> KeyMaterial:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = private.public_key()
        none = serialization.NoEncryption()
        SECRETS.add_base64(private_pem(private))  # PKCS#8 and PKCS#1 bodies differ: both are watched for
        SECRETS.add_base64(private.private_bytes(_PEM, serialization.PrivateFormat.TraditionalOpenSSL, none).decode())
        return cls(
            private=private,
            public=public,
            pkcs1_pem=private.private_bytes(_PEM, serialization.PrivateFormat.TraditionalOpenSSL, none).decode(),
            pkcs8_pem=private.private_bytes(_PEM, serialization.PrivateFormat.PKCS8, none).decode(),
            spki_pem=public.public_bytes(_PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
            pkcs1_public_pem=public.public_bytes(_PEM, serialization.PublicFormat.PKCS1).decode(),
        )


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(_PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


@pytest.fixture(scope="session")
def app_keys() -> KeyMaterial:
    """The app's key pair (the app signs requests with its private key)."""
    return KeyMaterial.generate()


@pytest.fixture(scope="session")
def other_keys() -> KeyMaterial:
    """An unrelated key pair: Alipay's, or the wrong one a user pasted."""
    return KeyMaterial.generate()
