"""Throw-away certificates shaped like the three files Alipay's console hands out in certificate mode.

A root CA signs two intermediates, as Alipay's does: "Class 1" issues app certificates, "Class 2" issues
Alipay's own. The root bundle also holds an ECDSA root, as ``alipayRootCert.crt`` does, which the
root SN must leave out. Made in memory for ``serve --demo`` and the tests; nothing is written anywhere.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from graph.gateway.certs import cert_sn
from graph.sandbox.credentials import new_rsa_key

CertificateIssuerKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def name(
    common_name: str, *, organization: str = "Sandbox Gateway", unit: str = "Certification Authority"
) -> x509.Name:
    """A DN in the order Alipay's CAs write theirs: C, O, OU, CN."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def issue(
    subject: x509.Name,
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
    *,
    issuer: x509.Name,
    issuer_key: CertificateIssuerKey,
    not_before: datetime,
    not_after: datetime,
    serial: int | None = None,
    ca: bool = False,
) -> x509.Certificate:
    """One certificate; self-signed when ``issuer`` is ``subject`` and ``issuer_key`` its key."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(issuer_key, hashes.SHA256())


def pem(*certs: x509.Certificate) -> str:
    return "".join(cert.public_bytes(serialization.Encoding.PEM).decode("ascii") for cert in certs)


@dataclass(frozen=True)
class CertChain:
    """The three files of certificate mode, for one app, and the SNs they yield."""

    app_cert_pem: str  # appCertPublicKey_<app id>.crt
    alipay_cert_pem: str  # alipayCertPublicKey_RSA2.crt: Alipay's certificate, then the CA that issued it
    root_cert_pem: str  # alipayRootCert.crt: an ECDSA root (left out of the SN) and the RSA root
    app_cert_sn: str
    alipay_cert_sn: str
    alipay_root_cert_sn: str


@dataclass(frozen=True)
class _Authority:
    root: x509.Certificate
    ecdsa_root: x509.Certificate
    class1: x509.Certificate  # issues app certificates
    class1_key: rsa.RSAPrivateKey
    class2: x509.Certificate  # issues Alipay's certificates
    class2_key: rsa.RSAPrivateKey


@functools.cache
def _authority(now: datetime) -> _Authority:
    # CA keys cost ~50 ms each: made once per process (per start time), like a real CA that outlives its leaves.
    root_key, class1_key, class2_key = new_rsa_key(), new_rsa_key(), new_rsa_key()
    ecdsa_key = ec.generate_private_key(ec.SECP384R1())
    start, end = now - timedelta(days=365), now + timedelta(days=3650)
    root_name, ecdsa_name = name("Sandbox Certification Authority R1"), name("Sandbox Certification Authority E1")
    root = issue(
        root_name,
        root_key.public_key(),
        issuer=root_name,
        issuer_key=root_key,
        not_before=start,
        not_after=end,
        ca=True,
    )
    ecdsa_root = issue(
        ecdsa_name,
        ecdsa_key.public_key(),
        issuer=ecdsa_name,
        issuer_key=ecdsa_key,
        not_before=start,
        not_after=end,
        ca=True,
    )
    class1 = issue(
        name("Sandbox Certification Authority Class 1 R1"),
        class1_key.public_key(),
        issuer=root_name,
        issuer_key=root_key,
        not_before=start,
        not_after=end,
        ca=True,
    )
    class2 = issue(
        name("Sandbox Certification Authority Class 2 R1"),
        class2_key.public_key(),
        issuer=root_name,
        issuer_key=root_key,
        not_before=start,
        not_after=end,
        ca=True,
    )
    return _Authority(root, ecdsa_root, class1, class1_key, class2, class2_key)


def issue_cert_chain(
    app_id: str, app_key: rsa.RSAPublicKey, alipay_key: rsa.RSAPublicKey, *, now: datetime, days: int = 365
) -> CertChain:
    """Certificates for ``app_key`` (the app's) and ``alipay_key`` (what the gateway signs answers with)."""
    authority = _authority(now.replace(hour=0, minute=0, second=0, microsecond=0))
    start, end = now - timedelta(days=1), now + timedelta(days=days)
    app_cert = issue(
        name(f"2088000000000000-{app_id}", organization="沙箱应用", unit="Alipay"),
        app_key,
        issuer=authority.class1.subject,
        issuer_key=authority.class1_key,
        not_before=start,
        not_after=end,
    )
    alipay_cert = issue(
        name("支付宝(中国)网络技术有限公司-2088000000000000", organization="沙箱应用", unit="Alipay"),
        alipay_key,
        issuer=authority.class2.subject,
        issuer_key=authority.class2_key,
        not_before=start,
        not_after=end,
    )
    return CertChain(
        app_cert_pem=pem(app_cert),
        alipay_cert_pem=pem(alipay_cert, authority.class2),
        root_cert_pem=pem(authority.ecdsa_root, authority.root),
        app_cert_sn=cert_sn(app_cert),
        alipay_cert_sn=cert_sn(alipay_cert),
        alipay_root_cert_sn=cert_sn(authority.root),
    )
