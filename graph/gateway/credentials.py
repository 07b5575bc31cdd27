"""What a client signs, verifies and encrypts with: loaded once at start-up, never printed."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa

from graph.gateway.certs import CertSNs
from graph.gateway.signing import SignType


@dataclass(frozen=True, slots=True)
class Credentials:
    app_id: str
    private_key: rsa.RSAPrivateKey
    alipay_public_key: rsa.RSAPublicKey  # in certificate mode, the key of Alipay's certificate
    sign_type: SignType = SignType.RSA2
    certs: CertSNs | None = None  # certificate mode (公钥证书模式) when set
    encrypt_key: bytes | None = None  # AES content encryption when set

    def __repr__(self) -> str:  # keys stay out of every repr, traceback and log line
        modes = (", cert_mode" if self.certs else "") + (", aes" if self.encrypt_key else "")
        return f"Credentials(app_id={self.app_id!r}, sign_type={self.sign_type.value}{modes})"

    def verification_hint(self) -> str:
        """What to check when an answer does not verify: the usual mistake is the app's own key."""
        if self.certs is not None:
            return "check that ALIPAY_PUBLIC_CERT_FILE is Alipay's certificate (alipayCertPublicKey_RSA2.crt)"
        return (
            "check that ALIPAY_PUBLIC_KEY is Alipay's public key (from the open platform console), "
            "not your app's own public key"
        )
