"""AES content encryption (接口内容加密, ``encrypt_type=AES``), pure: no I/O.

AES-CBC with a zero IV and PKCS#7 padding, the key being the base64 text Alipay's console shows, as the
Java SDK's ``AlipayEncrypt`` does. A fixed IV leaks whether two plaintexts share a prefix; that is the
protocol, not a choice made here. The official Python SDK's AES raises ``TypeError`` on Python 3.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KEY_SIZES = (16, 24, 32)  # AES-128, AES-192, AES-256
_IV = bytes(16)
_BLOCK_BITS = 128


class AesKeyError(ValueError):
    """The configured key is unusable. The message names where it came from, never what it holds."""


class DecryptError(ValueError):
    """A ciphertext did not decrypt to UTF-8 text with this key."""


def load_key(text: str, source: str) -> bytes:
    """The raw key from its base64 text; 16, 24 or 32 bytes."""
    try:
        key = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise AesKeyError(f"{source}: not base64 (expected the AES key as Alipay's console shows it)") from None
    if len(key) not in KEY_SIZES:
        raise AesKeyError(f"{source}: an AES key is 16, 24 or 32 bytes; this one is {len(key)}")
    return key


def _cipher(key: bytes) -> Cipher[modes.CBC]:
    return Cipher(algorithms.AES(key), modes.CBC(_IV))


def encrypt(plaintext: str, key: bytes) -> str:
    """Base64 of AES-CBC(zero IV, PKCS#7) over the UTF-8 text."""
    padder = padding.PKCS7(_BLOCK_BITS).padder()
    padded = padder.update(plaintext.encode("utf-8")) + padder.finalize()
    encryptor = _cipher(key).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode("ascii")


def decrypt(ciphertext: str, key: bytes) -> str:
    """The UTF-8 text inside a base64 ciphertext; ``DecryptError`` when it is not one made with ``key``."""
    try:
        raw = base64.b64decode("".join(ciphertext.split()), validate=True)
        if not raw or len(raw) % 16:
            raise ValueError("not whole AES blocks")
        decryptor = _cipher(key).decryptor()
        padded = decryptor.update(raw) + decryptor.finalize()
        unpadder = padding.PKCS7(_BLOCK_BITS).unpadder()
        return (unpadder.update(padded) + unpadder.finalize()).decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        raise DecryptError("the ciphertext does not decrypt with this key") from None
