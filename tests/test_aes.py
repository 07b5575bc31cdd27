"""graph.gateway.aes against an independent AES-CBC implementation (pycryptodome, installed with the official SDK)."""

from __future__ import annotations

import base64
import os

import pytest
from Crypto.Cipher import AES
from Crypto.Util.Padding import pad, unpad

from graph.gateway import aes

TEXTS = [
    '{"app_version":"0.0.1","bundle_id":"com.alipay.alipaywallet"}',
    "",  # a whole block of padding
    "x" * 16,  # exactly one block: PKCS#7 adds a second
    '{"app_name":"小程序demo","app_logo":"https:\\/\\/example.com\\/logo.png"}',
]


def reference_encrypt(text: str, key: bytes) -> str:
    cipher = AES.new(key, AES.MODE_CBC, iv=bytes(16))
    return base64.b64encode(cipher.encrypt(pad(text.encode("utf-8"), AES.block_size))).decode("ascii")


def reference_decrypt(ciphertext: str, key: bytes) -> str:
    cipher = AES.new(key, AES.MODE_CBC, iv=bytes(16))
    return unpad(cipher.decrypt(base64.b64decode(ciphertext)), AES.block_size).decode("utf-8")


@pytest.mark.parametrize("size", aes.KEY_SIZES)
@pytest.mark.parametrize("text", TEXTS)
def test_ciphertext_equals_the_reference_implementations(size: int, text: str) -> None:
    key = os.urandom(size)
    ours = aes.encrypt(text, key)
    assert ours == reference_encrypt(text, key)  # zero IV + PKCS#7 is deterministic: byte-identical
    assert reference_decrypt(ours, key) == text
    assert aes.decrypt(reference_encrypt(text, key), key) == text


def test_known_answer() -> None:
    # AES-128-CBC, zero key and IV, "{}" padded with fourteen 0x0e bytes: a value anyone can recompute.
    assert aes.encrypt("{}", bytes(16)) == reference_encrypt("{}", bytes(16))
    assert len(base64.b64decode(aes.encrypt("{}", bytes(16)))) == 16


def test_decrypt_tolerates_line_breaks_in_the_base64() -> None:
    key = os.urandom(16)
    ciphertext = aes.encrypt(TEXTS[0], key)
    assert aes.decrypt(ciphertext[:10] + "\r\n" + ciphertext[10:], key) == TEXTS[0]


@pytest.mark.parametrize(
    "ciphertext",
    [
        "not base64!",
        "",  # no block at all
        base64.b64encode(bytes(15)).decode(),  # not whole blocks
    ],
)
def test_unreadable_ciphertexts(ciphertext: str) -> None:
    with pytest.raises(aes.DecryptError):
        aes.decrypt(ciphertext, os.urandom(16))


def test_the_wrong_key_does_not_decrypt() -> None:
    ciphertext = aes.encrypt(TEXTS[3], os.urandom(16))
    # A wrong key gives bad padding (255 times in 256) and otherwise ~60 random bytes that are not UTF-8.
    with pytest.raises(aes.DecryptError):
        aes.decrypt(ciphertext, os.urandom(16))


def test_bytes_that_are_not_utf8_are_refused() -> None:
    key = os.urandom(16)
    cipher = AES.new(key, AES.MODE_CBC, iv=bytes(16))
    ciphertext = base64.b64encode(cipher.encrypt(pad(b"\xff\xfe", AES.block_size))).decode()
    with pytest.raises(aes.DecryptError):
        aes.decrypt(ciphertext, key)


@pytest.mark.parametrize("size", aes.KEY_SIZES)
def test_keys_as_the_console_shows_them(size: int) -> None:
    key = os.urandom(size)
    text = base64.b64encode(key).decode()
    assert aes.load_key(text, "ALIPAY_ENCRYPT_KEY") == key
    assert aes.load_key(f"  {text[:8]}\n{text[8:]}\n", "ALIPAY_ENCRYPT_KEY") == key


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not base64 at all!", "ALIPAY_ENCRYPT_KEY: not base64"),
        (base64.b64encode(bytes(15)).decode(), "ALIPAY_ENCRYPT_KEY: an AES key is 16, 24 or 32 bytes; this one is 15"),
        (base64.b64encode(bytes(64)).decode(), "ALIPAY_ENCRYPT_KEY: an AES key is 16, 24 or 32 bytes; this one is 64"),
        ("", "ALIPAY_ENCRYPT_KEY: an AES key is 16, 24 or 32 bytes; this one is 0"),
    ],
)
def test_unusable_keys(text: str, message: str) -> None:
    with pytest.raises(aes.AesKeyError) as caught:
        aes.load_key(text, "ALIPAY_ENCRYPT_KEY")
    assert str(caught.value).startswith(message)
