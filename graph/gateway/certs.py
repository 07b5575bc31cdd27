"""Public-key certificate mode (公钥证书模式): certificate serial numbers and the start-up checks.

Alipay names a certificate by its "SN": the lowercase hex MD5 of the issuer's distinguished name in
RFC 2253 order followed by the serial number in decimal (Java ``AlipaySignature.getCertSN``).
``cert.issuer.rfc4514_string()`` writes the same text as Java's ``getName()`` for the attribute types
Alipay's CAs use (C, O, OU, CN); an issuer with other attribute types (an e-mail address, say) would be
written differently by Java, which hex-encodes attributes it has no keyword for.

``alipay_root_cert_sn`` joins with ``_`` the SNs of the root bundle's certificates that are signed with
RSA (signature OID under ``1.2.840.113549.1.1``). The bundle also holds an ECDSA and an SM2 root that
``cryptography`` warns about or refuses to parse (an ECDSA signature algorithm with a NULL parameter), so
each PEM block's signature OID is read from its DER before anything parses the block.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa

RSA_SIGNATURE_OID_PREFIX = "1.2.840.113549.1.1"  # Java's getRootCertSN tests startsWith on this string
_PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.DOTALL)
_SEQUENCE, _OID = 0x30, 0x06


class CertLoadError(ValueError):
    """A certificate could not be used. The message names the variable it came from."""


@dataclass(frozen=True)
class CertSNs:
    """What certificate mode adds to every request (and expects back), all public values."""

    app_cert_sn: str  # the app's certificate, sent as app_cert_sn
    alipay_root_cert_sn: str  # Alipay's RSA roots, sent as alipay_root_cert_sn
    alipay_cert_sn: str  # Alipay's certificate: answers name it in alipay_cert_sn (v3: the alipay-sn header)


def pem_blocks(text: str) -> list[bytes]:
    """The DER of every ``CERTIFICATE`` PEM block in ``text``, in order; a block that is not base64 raises."""
    blocks = []
    for body in _PEM_BLOCK.findall(text):
        try:
            blocks.append(base64.b64decode("".join(body.split()), validate=True))
        except (binascii.Error, ValueError):
            raise ValueError("a certificate block is not base64") from None
    return blocks


def signature_algorithm_oid(der: bytes) -> str:
    """The dotted signature algorithm OID of a DER certificate, read without parsing the rest of it."""
    tag, content, _ = _tlv(der, 0)  # Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }
    if tag != _SEQUENCE:
        raise ValueError("not a DER certificate")
    tag, _, tbs_end = _tlv(der, content)
    if tag != _SEQUENCE:
        raise ValueError("not a DER certificate")
    tag, algorithm, _ = _tlv(der, tbs_end)  # AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters }
    if tag != _SEQUENCE:
        raise ValueError("not a DER certificate")
    tag, start, end = _tlv(der, algorithm)
    if tag != _OID:
        raise ValueError("not a DER certificate")
    return _oid_text(der[start:end])


def _tlv(der: bytes, at: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at ``at``."""
    if at + 2 > len(der):
        raise ValueError("truncated DER")
    tag, length, at = der[at], der[at + 1], at + 2
    if length & 0x80:
        size = length & 0x7F
        if not 1 <= size <= 4 or at + size > len(der):
            raise ValueError("bad DER length")
        length, at = int.from_bytes(der[at : at + size], "big"), at + size
    if at + length > len(der):
        raise ValueError("truncated DER")
    return tag, at, at + length


def _oid_text(body: bytes) -> str:
    if not body or body[-1] & 0x80:
        raise ValueError("bad OID")
    arcs, value = [], 0
    for byte in body:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    top = min(arcs[0] // 40, 2)  # the first byte packs two arcs: 40 * top + second
    return ".".join(str(arc) for arc in (top, arcs[0] - 40 * top, *arcs[1:]))


def cert_sn(cert: x509.Certificate) -> str:
    """Alipay's SN of a certificate: md5(issuer DN + decimal serial), lowercase hex."""
    text = cert.issuer.rfc4514_string() + str(cert.serial_number)
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def root_cert_sn(text: str, source: str) -> str:
    """``alipay_root_cert_sn``: the SNs of the bundle's RSA-signed certificates, joined with ``_``."""
    try:
        blocks = pem_blocks(text)
        rsa_signed = [der for der in blocks if signature_algorithm_oid(der).startswith(RSA_SIGNATURE_OID_PREFIX)]
        sns = [cert_sn(x509.load_der_x509_certificate(der)) for der in rsa_signed]
    except ValueError:
        raise CertLoadError(f"{source}: not a readable certificate bundle (expected PEM certificates)") from None
    if not sns:
        raise CertLoadError(f"{source}: holds no RSA-signed root certificate (is it alipayRootCert.crt?)")
    return "_".join(sns)


def load_certificate(text: str, source: str) -> x509.Certificate:
    """The first certificate of a PEM file (Alipay's certificate file also carries the CA that issued it)."""
    try:
        blocks = pem_blocks(text)
        if not blocks:
            raise ValueError("no certificate")
        return x509.load_der_x509_certificate(blocks[0])
    except ValueError:
        raise CertLoadError(f"{source}: not a readable certificate (expected a PEM file)") from None


def _rsa_key_of(cert: x509.Certificate, source: str) -> rsa.RSAPublicKey:
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):  # e.g. an SM2 key, which cryptography does not know
        key = None
    if not isinstance(key, rsa.RSAPublicKey):
        raise CertLoadError(f"{source}: the certificate's key is not an RSA key (RSA2 certificates are needed)")
    return key


def _check_validity(cert: x509.Certificate, source: str, now: datetime) -> None:
    if now > cert.not_valid_after_utc:
        raise CertLoadError(f"{source}: the certificate expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    if now < cert.not_valid_before_utc:
        raise CertLoadError(f"{source}: the certificate is not valid before {cert.not_valid_before_utc:%Y-%m-%d} UTC")


@dataclass(frozen=True)
class CertSources:
    """Where each text came from, for error messages."""

    app_cert: str = "ALIPAY_APP_CERT_FILE"
    alipay_cert: str = "ALIPAY_PUBLIC_CERT_FILE"
    root_cert: str = "ALIPAY_ROOT_CERT_FILE"
    private_key: str = "ALIPAY_APP_PRIVATE_KEY"


def load_cert_mode(
    app_cert_text: str,
    alipay_cert_text: str,
    root_cert_text: str,
    private_key: rsa.RSAPrivateKey,
    *,
    now: datetime,
    sources: CertSources = CertSources(),
) -> tuple[CertSNs, rsa.RSAPublicKey]:
    """The SNs and Alipay's public key, after the checks a misconfigured deployment fails at start-up:
    unreadable files, expired certificates, an app certificate that is not for the app's private key."""
    app_cert = load_certificate(app_cert_text, sources.app_cert)
    _check_validity(app_cert, sources.app_cert, now)
    app_key = _rsa_key_of(app_cert, sources.app_cert)
    if app_key.public_numbers() != private_key.public_key().public_numbers():
        raise CertLoadError(
            f"{sources.app_cert}: the certificate is not for the key in {sources.private_key} "
            "(use the appCertPublicKey_<app id>.crt issued for this private key)"
        )
    alipay_cert = load_certificate(alipay_cert_text, sources.alipay_cert)
    _check_validity(alipay_cert, sources.alipay_cert, now)
    alipay_key = _rsa_key_of(alipay_cert, sources.alipay_cert)
    if alipay_key.public_numbers() == app_key.public_numbers():
        raise CertLoadError(
            f"{sources.alipay_cert}: this is the app's own certificate; give Alipay's (alipayCertPublicKey_RSA2.crt)"
        )
    sns = CertSNs(
        app_cert_sn=cert_sn(app_cert),
        alipay_root_cert_sn=root_cert_sn(root_cert_text, sources.root_cert),
        alipay_cert_sn=cert_sn(alipay_cert),
    )
    return sns, alipay_key
