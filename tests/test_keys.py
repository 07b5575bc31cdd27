"""graph.gateway.keys: every key form users paste loads; every failure names its source and never quotes the key."""

from __future__ import annotations

import base64
import traceback
from collections.abc import Callable

import pytest
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from graph.gateway.keys import KeyLoadError, load_private_key, load_public_key
from graph.gateway.signing import SignType, sign, verify
from tests.keyfixtures import KeyMaterial, app_keys, other_keys, pem_body

__all__ = ["app_keys", "other_keys"]  # session fixtures used by name below

PRIVATE_SOURCE = "ALIPAY_APP_PRIVATE_KEY"
PUBLIC_SOURCE = "ALIPAY_PUBLIC_KEY"
DATA = 'app_id=2021004100000000&biz_content={"bundle_id":"com.alipay.alipaywallet"}&memo=支付宝&sign_type=RSA2'.encode()


def _pasted(body: str) -> str:
    """A base64 body as it arrives from a copy and paste: wrapped at 64, stray spaces, tabs and CRLFs."""
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "  " + "\r\n".join(f"{line[:10]} {line[10:30]}\t{line[30:]}" for line in lines) + "\n\n"


def _ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


# ------------------------------------------------------------------------------------------------- good keys

PRIVATE_FORMS: dict[str, Callable[[KeyMaterial], str]] = {
    "pem pkcs1": lambda k: k.pkcs1_pem,
    "pem pkcs8": lambda k: k.pkcs8_pem,
    "bare pkcs8 (Alipay key tool)": lambda k: k.pkcs8_b64,
    "bare pkcs1 (key tool after conversion)": lambda k: k.pkcs1_b64,
    "bare pkcs8 pasted with breaks and spaces": lambda k: _pasted(k.pkcs8_b64),
    "bare pkcs1 pasted with breaks and spaces": lambda k: _pasted(k.pkcs1_b64),
    "pem pkcs1 with crlf": lambda k: k.pkcs1_pem.replace("\n", "\r\n"),
    "pem pkcs8 with crlf and blank lines around": lambda k: "\r\n\r\n" + k.pkcs8_pem.replace("\n", "\r\n") + "\r\n",
}

PUBLIC_FORMS: dict[str, Callable[[KeyMaterial], str]] = {
    "pem spki": lambda k: k.spki_pem,
    "pem pkcs1": lambda k: k.pkcs1_public_pem,
    "bare spki (Alipay's public key)": lambda k: k.spki_b64,
    "bare spki pasted with breaks and spaces": lambda k: _pasted(k.spki_b64),
    "bare pkcs1": lambda k: pem_body(k.pkcs1_public_pem),
    "pem spki with crlf": lambda k: k.spki_pem.replace("\n", "\r\n"),
}


@pytest.mark.parametrize("form", sorted(PRIVATE_FORMS))
def test_private_key_forms_load_and_sign_the_same(app_keys: KeyMaterial, form: str) -> None:
    key = load_private_key(PRIVATE_FORMS[form](app_keys), PRIVATE_SOURCE)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.private_numbers() == app_keys.private.private_numbers()
    for sign_type in SignType:
        signature = sign(DATA, key, sign_type)
        assert signature == sign(DATA, app_keys.private, sign_type)
        assert verify(DATA, signature, app_keys.public, sign_type)


@pytest.mark.parametrize("form", sorted(PUBLIC_FORMS))
def test_public_key_forms_load_and_verify_the_same(app_keys: KeyMaterial, other_keys: KeyMaterial, form: str) -> None:
    key = load_public_key(PUBLIC_FORMS[form](app_keys), PUBLIC_SOURCE)
    assert isinstance(key, rsa.RSAPublicKey)
    assert key.public_numbers() == app_keys.public.public_numbers()
    for sign_type in SignType:
        assert verify(DATA, sign(DATA, app_keys.private, sign_type), key, sign_type)
        assert not verify(DATA, sign(DATA, other_keys.private, sign_type), key, sign_type)


# -------------------------------------------------------------------------------------------------- bad keys


def _assert_quotes_nothing(exc: KeyLoadError, text: str, source: str) -> None:
    message, representation = str(exc), repr(exc)
    assert message.startswith(f"{source}: ")
    assert source in representation
    assert exc.__cause__ is None
    assert exc.__context__ is None or exc.__suppress_context__
    shown = message + representation + "".join(traceback.format_exception(exc))
    body = "".join("".join(line.split()) for line in text.splitlines() if not line.lstrip().startswith("-----"))
    width = min(16, len(body))
    for i in range(len(body) - width + 1 if body else 0):
        assert body[i : i + width] not in shown, "the error quotes the key"


def _encrypted_pem(k: KeyMaterial) -> str:
    encryption = serialization.BestAvailableEncryption(b"passphrase")
    return k.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption).decode()


def _ec_private_pem(_: KeyMaterial) -> str:
    return (
        _ec_key()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )


def _ec_public_pem(_: KeyMaterial) -> str:
    public = _ec_key().public_key()
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    length = bytes([size]) if size < 128 else bytes([0x80 | 2]) + size.to_bytes(2, "big")
    return bytes([tag]) + length + content


# An SM2 key (China's national curve, which Alipay's key tool can also make): cryptography refuses it with
# UnsupportedAlgorithm, not ValueError. The key bytes are dummies; the curve OID is what matters.
_SM2_ALGORITHM = _der(0x30, bytes.fromhex("06072a8648ce3d0201") + bytes.fromhex("06082a811ccf5501822d"))
_SM2_PUBLIC_DER = _der(0x30, _SM2_ALGORITHM + _der(0x03, b"\x00\x04" + bytes(range(1, 65))))
_SM2_PRIVATE_DER = _der(
    0x30,
    _der(0x02, b"\x00") + _SM2_ALGORITHM + _der(0x04, _der(0x30, _der(0x02, b"\x01") + _der(0x04, bytes(range(32))))),
)


def _sm2(der: bytes, label: str | None) -> Callable[[KeyMaterial], str]:
    body = base64.b64encode(der).decode()
    if label is None:
        return lambda _: body
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return lambda _: f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----\n"


BAD_COMMON: dict[str, Callable[[KeyMaterial], str]] = {
    "garbage": lambda _: "this is not a key, it is a sentence someone pasted by mistake",
    "empty": lambda _: "",
    "whitespace": lambda _: " \r\n\t ",
    "non-ascii": lambda _: "支付宝应用私钥支付宝应用私钥支付宝应用私钥",
    "non-ascii in pem": lambda _: (
        "-----BEGIN PRIVATE KEY-----\n密钥密钥密钥密钥密钥密钥密钥密钥\n-----END PRIVATE KEY-----\n"
    ),
    "pem marker, nothing else": lambda _: "-----BEGIN",
}

BAD_PRIVATE: dict[str, Callable[[KeyMaterial], str]] = {
    **BAD_COMMON,
    "truncated bare base64 (whole quanta)": lambda k: k.pkcs8_b64[:800],
    "truncated bare base64 (broken padding)": lambda k: k.pkcs8_b64[:801],
    "truncated pem": lambda k: k.pkcs1_pem[: len(k.pkcs1_pem) // 2] + "\n-----END RSA PRIVATE KEY-----\n",
    "public key pem given as private": lambda k: k.spki_pem,
    "public key bare given as private": lambda k: k.spki_b64,
    "encrypted pem": _encrypted_pem,
    "ec key pem": _ec_private_pem,
    "ec key bare": lambda k: pem_body(_ec_private_pem(k)),
    "sm2 key bare": _sm2(_SM2_PRIVATE_DER, None),
    "sm2 key pem": _sm2(_SM2_PRIVATE_DER, "PRIVATE KEY"),
}

BAD_PUBLIC: dict[str, Callable[[KeyMaterial], str]] = {
    **BAD_COMMON,
    "truncated bare base64 (whole quanta)": lambda k: k.spki_b64[:200],
    "truncated bare base64 (broken padding)": lambda k: k.spki_b64[:201],
    "truncated pem": lambda k: k.spki_pem[: len(k.spki_pem) // 2] + "\n-----END PUBLIC KEY-----\n",
    "private key pem given as public": lambda k: k.pkcs8_pem,
    "private key pkcs1 pem given as public": lambda k: k.pkcs1_pem,
    "private key bare given as public": lambda k: k.pkcs8_b64,
    "ec key pem": _ec_public_pem,
    "ec key bare": lambda k: pem_body(_ec_public_pem(k)),
    "sm2 key bare": _sm2(_SM2_PUBLIC_DER, None),
    "sm2 key pem": _sm2(_SM2_PUBLIC_DER, "PUBLIC KEY"),
}


@pytest.mark.parametrize("case", sorted(BAD_PRIVATE))
def test_bad_private_key_names_the_source_and_quotes_nothing(app_keys: KeyMaterial, case: str) -> None:
    text = BAD_PRIVATE[case](app_keys)
    with pytest.raises(KeyLoadError, match="not a readable RSA private key") as info:
        load_private_key(text, PRIVATE_SOURCE)
    _assert_quotes_nothing(info.value, text, PRIVATE_SOURCE)


@pytest.mark.parametrize("case", sorted(BAD_PUBLIC))
def test_bad_public_key_names_the_source_and_quotes_nothing(app_keys: KeyMaterial, case: str) -> None:
    text = BAD_PUBLIC[case](app_keys)
    with pytest.raises(KeyLoadError, match="not a readable RSA public key") as info:
        load_public_key(text, PUBLIC_SOURCE)
    _assert_quotes_nothing(info.value, text, PUBLIC_SOURCE)


def test_the_sm2_samples_are_what_cryptography_refuses_as_unsupported() -> None:
    # Guard the SM2 cases above: they must reach the loaders' UnsupportedAlgorithm path, not fail as malformed DER.
    with pytest.raises(UnsupportedAlgorithm, match=r"1\.2\.156\.10197\.1\.301"):
        serialization.load_der_private_key(_SM2_PRIVATE_DER, password=None)
    with pytest.raises(UnsupportedAlgorithm, match=r"1\.2\.156\.10197\.1\.301"):
        serialization.load_der_public_key(_SM2_PUBLIC_DER)


def test_key_load_error_is_a_value_error() -> None:
    assert issubclass(KeyLoadError, ValueError)


def test_the_leak_check_would_catch_a_quoting_error(app_keys: KeyMaterial) -> None:
    # Guard the guard: an error that quotes even a slice of the body fails the check.
    leaky = KeyLoadError(f"{PRIVATE_SOURCE}: bad key near {app_keys.pkcs8_b64[500:516]}")
    with pytest.raises(AssertionError, match="quotes the key"):
        _assert_quotes_nothing(leaky, app_keys.pkcs8_pem, PRIVATE_SOURCE)
