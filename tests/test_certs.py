"""graph.gateway.certs: Alipay's certificate SNs (checked against the Node SDK's published vectors), the root
bundle's non-RSA certificates left out without being parsed, and the start-up checks of certificate mode."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from graph.gateway.certs import (
    CertLoadError,
    CertSNs,
    cert_sn,
    load_cert_mode,
    load_certificate,
    pem_blocks,
    root_cert_sn,
    signature_algorithm_oid,
)
from graph.gateway.keys import load_private_key
from graph.sandbox import DemoCredentials
from graph.sandbox.certs import CertChain, issue, issue_cert_chain, name, pem
from graph.sandbox.credentials import new_rsa_key
from tests.modefixtures import CERT_APP_ID, cert_chain

__all__ = ["cert_chain"]  # session fixture used by name below

NOW = datetime.now(UTC)

# --------------------------------------------------------------------------------------- DER, by hand

SHA1_WITH_RSA = "1.2.840.113549.1.1.5"
ECDSA_WITH_SHA384 = "1.2.840.10045.4.3.3"
SM2_WITH_SM3 = "1.2.156.10197.1.501"


def _encode(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + content


def _elements(der: bytes) -> list[bytes]:
    """The TLVs (whole, header included) one after another in ``der``."""
    out, at = [], 0
    while at < len(der):
        size, header = der[at + 1], 2
        if size & 0x80:
            count = size & 0x7F
            size, header = int.from_bytes(der[at + 2 : at + 2 + count], "big"), 2 + count
        out.append(der[at : at + header + size])
        at += header + size
    return out


def _content(tlv: bytes) -> bytes:
    return tlv[2 + (tlv[1] & 0x7F if tlv[1] & 0x80 else 0) :]


def _oid(dotted: str) -> bytes:
    arcs = [int(arc) for arc in dotted.split(".")]
    body = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        while arc > 0x7F:
            arc >>= 7
            chunk.insert(0, 0x80 | (arc & 0x7F))
        body += bytes(chunk)
    return _encode(0x06, bytes(body))


def with_signature_algorithm(cert: x509.Certificate, oid: str, *, null_parameter: bool = False) -> bytes:
    """The certificate's DER with its signature algorithm (both copies) replaced; the signature then no
    longer verifies, which nothing here checks. ``null_parameter`` writes the NULL that Alipay's E1 root
    carries after its ECDSA OID, which ``cryptography`` warns about today and refuses in later versions."""
    algorithm = _encode(0x30, _oid(oid) + (b"\x05\x00" if null_parameter else b""))
    tbs, _, signature = _elements(_content(cert.public_bytes(Encoding.DER)))
    fields = _elements(_content(tbs))
    fields[2] = algorithm  # version [0], serialNumber, signature, issuer, ...
    return _encode(0x30, _encode(0x30, b"".join(fields)) + algorithm + signature)


def der_to_pem(der: bytes) -> str:
    body = base64.b64encode(der).decode("ascii")
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\n"


# ------------------------------------------------------------------------ the Node SDK's test vectors

ANT = {"organization": "Ant Financial", "unit": "Certification Authority"}


def _cert(issuer: x509.Name, serial: int, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> x509.Certificate:
    return issue(
        name("leaf"),
        key.public_key(),
        issuer=issuer,
        issuer_key=key,
        not_before=NOW - timedelta(days=1),
        not_after=NOW + timedelta(days=1),
        serial=serial,
    )


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return new_rsa_key()


def test_sn_reproduces_the_node_sdks_app_and_alipay_vectors(rsa_key: rsa.RSAPrivateKey) -> None:
    # The issuers and serial numbers of the Node SDK's fixtures appCertPublicKey_2021001161683774.crt and
    # alipayCertPublicKey_RSA2.crt (read from the public certificates); the SN depends on nothing else.
    app = _cert(
        name("Ant Financial Certification Authority Class 1 R1", **ANT), 0x2020051862039D4090897BA4D51C2126, rsa_key
    )
    alipay = _cert(
        name("Ant Financial Certification Authority Class 2 R1", **ANT), 0x20200514E63C2FE04D538716FE21358B, rsa_key
    )
    assert cert_sn(app) == "866efef280dec9137a87d047ac446315"
    assert cert_sn(alipay) == "7513daaaa48aa3ba2e4018d84402479c"
    # The md5 input, spelled out: issuer in RFC 2253 order (CN first), then the serial in decimal.
    text = "CN=Ant Financial Certification Authority Class 1 R1,OU=Certification Authority,O=Ant Financial,C=CN"
    expected = hashlib.md5((text + "42701552708448241360226107228231049510").encode(), usedforsecurity=False)
    assert cert_sn(app) == expected.hexdigest()


def test_root_sn_reproduces_the_node_sdks_vector(rsa_key: rsa.RSAPrivateKey) -> None:
    # alipayRootCert.crt holds four roots: SM2 "ROOTCA", RSA "R1", ECDSA "E1" (with the NULL parameter that
    # cryptography objects to) and RSA "iTrusChina G3"; only the two RSA-signed ones make the SN.
    ec_key = ec.generate_private_key(ec.SECP256R1())
    sm2 = _cert(
        x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "NRCAC"),
                x509.NameAttribute(NameOID.COMMON_NAME, "ROOTCA"),
            ]
        ),
        0x69E2FEC0170AC67B,
        ec_key,
    )
    r1 = _cert(name("Ant Financial Certification Authority R1", **ANT), 0x1FCFA18D6A480D11, rsa_key)
    e1 = _cert(name("Ant Financial Certification Authority E1", **ANT), 0x417EFA52C07FDF4A, ec_key)
    itrus = _cert(
        name("iTrusChina Class 2 Root CA - G3", organization="iTrusChina", unit="China Trust Network"),
        0x10C764E9D560384212D9C08FD10E373FDD0FB396,
        rsa_key,
    )
    bundle = "\n".join(
        [
            der_to_pem(with_signature_algorithm(sm2, SM2_WITH_SM3)),
            pem(r1),
            der_to_pem(with_signature_algorithm(e1, ECDSA_WITH_SHA384, null_parameter=True)),
            der_to_pem(with_signature_algorithm(itrus, SHA1_WITH_RSA)),
        ]
    )
    assert root_cert_sn(bundle, "ALIPAY_ROOT_CERT_FILE") == (
        "687b59193f3f462dd5336e5abf83c5d8_02941eef3187dddf3d3b83462e1dfcf6"
    )
    # The E1 block is why the OID is read before parsing: parsing it warns (an error here) or fails.
    e1_der = pem_blocks(bundle)[2]
    assert signature_algorithm_oid(e1_der) == ECDSA_WITH_SHA384
    with pytest.raises((ValueError, Warning)):
        x509.load_der_x509_certificate(e1_der)


# --------------------------------------------------------------------------------- reading PEM and DER


def test_signature_oid_matches_cryptographys_reading(cert_chain: CertChain) -> None:
    for text in (cert_chain.app_cert_pem, cert_chain.alipay_cert_pem, cert_chain.root_cert_pem):
        for der in pem_blocks(text):
            parsed = x509.load_der_x509_certificate(der)
            assert signature_algorithm_oid(der) == parsed.signature_algorithm_oid.dotted_string


def test_pem_blocks_tolerate_crlf_and_text_between_blocks(cert_chain: CertChain) -> None:
    chain = cert_chain.alipay_cert_pem.replace("\n", "\r\n")
    text = "Alipay certificate\r\n" + chain.replace("-----\r\n-----BEGIN", "-----\r\n\r\nissuer:\r\n-----BEGIN")
    assert len(pem_blocks(text)) == 2
    assert pem_blocks(text) == pem_blocks(cert_chain.alipay_cert_pem)


def test_a_block_that_is_not_base64() -> None:
    with pytest.raises(ValueError, match="not base64"):
        pem_blocks("-----BEGIN CERTIFICATE-----\n%%%%\n-----END CERTIFICATE-----")


@pytest.mark.parametrize(
    "der",
    [
        b"",  # nothing
        b"\x30",  # no length
        b"\x31\x00",  # a SET, not a SEQUENCE
        b"\x30\x80",  # indefinite length (not DER)
        b"\x30\x85\x01\x02\x03\x04\x05",  # a length of 5 bytes
        b"\x30\x82\x01",  # length bytes cut
        b"\x30\x05\x30\x00",  # content shorter than announced
        b"\x30\x02\x02\x00",  # tbsCertificate is not a SEQUENCE
        b"\x30\x04\x30\x00\x02\x00",  # signatureAlgorithm is not a SEQUENCE
        b"\x30\x06\x30\x00\x30\x02\x05\x00",  # no OID in it
        b"\x30\x06\x30\x00\x30\x02\x06\x00",  # an empty OID
        b"\x30\x07\x30\x00\x30\x03\x06\x01\x81",  # an OID cut mid-arc
    ],
)
def test_malformed_der(der: bytes) -> None:
    with pytest.raises(ValueError, match=r"DER|OID"):
        signature_algorithm_oid(der)


def test_oid_decoding() -> None:
    for dotted in ("1.2.840.113549.1.1.11", SM2_WITH_SM3, "2.5.4.3", "2.999.3", "0.9.2342.19200300.100.1.1"):
        der = b"\x30\x00" + _encode(0x30, _oid(dotted))
        assert signature_algorithm_oid(_encode(0x30, der)) == dotted


# ------------------------------------------------------------------------------------- bundle and errors


def test_root_sn_of_the_sandbox_bundle(cert_chain: CertChain) -> None:
    # The sandbox's bundle: an ECDSA root first, then the RSA root; the SN names the RSA root only.
    blocks = pem_blocks(cert_chain.root_cert_pem)
    assert [signature_algorithm_oid(der).startswith("1.2.840.10045") for der in blocks] == [True, False]
    rsa_root = x509.load_der_x509_certificate(blocks[1])
    assert root_cert_sn(cert_chain.root_cert_pem, "root") == cert_sn(rsa_root) == cert_chain.alipay_root_cert_sn


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "holds no RSA-signed root"),
        ("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----", "not a readable certificate bundle"),
        ("-----BEGIN CERTIFICATE-----\n***\n-----END CERTIFICATE-----", "not a readable certificate bundle"),
    ],
)
def test_unusable_root_bundles(text: str, message: str) -> None:
    with pytest.raises(CertLoadError, match=rf"^ALIPAY_ROOT_CERT_FILE: {message}"):
        root_cert_sn(text, "ALIPAY_ROOT_CERT_FILE")


def test_an_rsa_labelled_block_cryptography_cannot_read() -> None:
    # The signature algorithm says RSA, the rest is not a certificate.
    algorithm = _encode(0x30, _oid("1.2.840.113549.1.1.11") + b"\x05\x00")
    broken = _encode(0x30, _encode(0x30, b"") + algorithm + _encode(0x03, b"\x00"))
    assert signature_algorithm_oid(broken) == "1.2.840.113549.1.1.11"
    with pytest.raises(CertLoadError, match="not a readable certificate bundle"):
        root_cert_sn(der_to_pem(broken), "ALIPAY_ROOT_CERT_FILE")


def test_a_bundle_of_ecdsa_roots_only(cert_chain: CertChain) -> None:
    ecdsa_only = pem(x509.load_der_x509_certificate(pem_blocks(cert_chain.root_cert_pem)[0]))
    with pytest.raises(CertLoadError, match="no RSA-signed root certificate"):
        root_cert_sn(ecdsa_only, "ALIPAY_ROOT_CERT_FILE")


@pytest.mark.parametrize(
    "text", ["", "not a certificate", "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----"]
)
def test_unreadable_certificates(text: str) -> None:
    with pytest.raises(CertLoadError, match=r"^ALIPAY_APP_CERT_FILE: not a readable certificate"):
        load_certificate(text, "ALIPAY_APP_CERT_FILE")


def test_the_first_certificate_of_a_chain_file_is_the_leaf(cert_chain: CertChain) -> None:
    leaf = load_certificate(cert_chain.alipay_cert_pem, "ALIPAY_PUBLIC_CERT_FILE")
    assert cert_sn(leaf) == cert_chain.alipay_cert_sn
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


# ---------------------------------------------------------------------------------------- start-up checks


@pytest.fixture(scope="module")
def app_private(demo_credentials: DemoCredentials) -> rsa.RSAPrivateKey:
    return load_private_key(demo_credentials.app_private_key_pem, "app key")


def test_cert_mode_loads(
    cert_chain: CertChain, app_private: rsa.RSAPrivateKey, demo_credentials: DemoCredentials
) -> None:
    sns, alipay_key = load_cert_mode(
        cert_chain.app_cert_pem, cert_chain.alipay_cert_pem, cert_chain.root_cert_pem, app_private, now=NOW
    )
    assert sns == CertSNs(cert_chain.app_cert_sn, cert_chain.alipay_root_cert_sn, cert_chain.alipay_cert_sn)
    assert alipay_key.public_numbers() == demo_credentials.alipay_private_key.public_key().public_numbers()
    assert all(len(sn) == 32 for sn in (sns.app_cert_sn, sns.alipay_cert_sn))


def _leaf(public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey, *, start: datetime, end: datetime) -> str:
    issuer_key = new_rsa_key()
    return pem(
        issue(name("leaf"), public_key, issuer=name("CA"), issuer_key=issuer_key, not_before=start, not_after=end)
    )


@pytest.mark.parametrize(
    ("which", "start", "end", "message"),
    [
        (
            "app",
            NOW - timedelta(days=400),
            NOW - timedelta(days=35),
            "ALIPAY_APP_CERT_FILE: the certificate expired on",
        ),
        (
            "alipay",
            NOW - timedelta(days=400),
            NOW - timedelta(seconds=5),
            "ALIPAY_PUBLIC_CERT_FILE: the certificate expired",
        ),
        (
            "alipay",
            NOW + timedelta(days=2),
            NOW + timedelta(days=400),
            "ALIPAY_PUBLIC_CERT_FILE: the certificate is not valid before",
        ),
    ],
)
def test_certificates_outside_their_validity_are_refused(
    cert_chain: CertChain,
    app_private: rsa.RSAPrivateKey,
    demo_credentials: DemoCredentials,
    which: str,
    start: datetime,
    end: datetime,
    message: str,
) -> None:
    app, alipay = cert_chain.app_cert_pem, cert_chain.alipay_cert_pem
    if which == "app":
        app = _leaf(app_private.public_key(), start=start, end=end)
    else:
        alipay = _leaf(demo_credentials.alipay_private_key.public_key(), start=start, end=end)
    with pytest.raises(CertLoadError, match=rf"^{message}"):
        load_cert_mode(app, alipay, cert_chain.root_cert_pem, app_private, now=NOW)


def test_an_app_certificate_for_another_key_is_refused(cert_chain: CertChain, app_private: rsa.RSAPrivateKey) -> None:
    other = issue_cert_chain(CERT_APP_ID, new_rsa_key().public_key(), new_rsa_key().public_key(), now=NOW)
    with pytest.raises(
        CertLoadError, match=r"^ALIPAY_APP_CERT_FILE: the certificate is not for the key in ALIPAY_APP_PRIVATE_KEY"
    ):
        load_cert_mode(other.app_cert_pem, cert_chain.alipay_cert_pem, cert_chain.root_cert_pem, app_private, now=NOW)


def test_the_apps_own_certificate_as_alipays_is_refused(cert_chain: CertChain, app_private: rsa.RSAPrivateKey) -> None:
    with pytest.raises(CertLoadError, match=r"^ALIPAY_PUBLIC_CERT_FILE: this is the app's own certificate"):
        load_cert_mode(cert_chain.app_cert_pem, cert_chain.app_cert_pem, cert_chain.root_cert_pem, app_private, now=NOW)


def test_a_certificate_without_an_rsa_key_is_refused(cert_chain: CertChain, app_private: rsa.RSAPrivateKey) -> None:
    ec_leaf = _leaf(
        ec.generate_private_key(ec.SECP256R1()).public_key(), start=NOW - timedelta(days=1), end=NOW + timedelta(days=1)
    )
    with pytest.raises(CertLoadError, match=r"^ALIPAY_PUBLIC_CERT_FILE: the certificate's key is not an RSA key"):
        load_cert_mode(cert_chain.app_cert_pem, ec_leaf, cert_chain.root_cert_pem, app_private, now=NOW)


def test_a_certificate_whose_key_cryptography_does_not_know(
    cert_chain: CertChain, app_private: rsa.RSAPrivateKey
) -> None:
    # An SM2 key (国密): the EC key's curve OID prime256v1 swapped for SM2's, same length, so the DER stays valid.
    ec_leaf = _leaf(ec.generate_private_key(ec.SECP256R1()).public_key(), start=NOW, end=NOW + timedelta(days=1))
    der = pem_blocks(ec_leaf)[0]
    prime256v1, sm2 = _oid("1.2.840.10045.3.1.7"), _oid("1.2.156.10197.1.301")
    assert len(prime256v1) == len(sm2)
    assert der.count(prime256v1) == 1
    sm2_leaf = der_to_pem(der.replace(prime256v1, sm2))
    with pytest.raises(CertLoadError, match=r"^ALIPAY_PUBLIC_CERT_FILE: the certificate's key is not an RSA key"):
        load_cert_mode(
            cert_chain.app_cert_pem, sm2_leaf, cert_chain.root_cert_pem, app_private, now=NOW + timedelta(hours=1)
        )
