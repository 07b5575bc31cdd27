"""Seals: what instances share through Redis, authenticated with a key only the fleet holds.

Anyone who can write to the Redis the fleet shares could otherwise plant an answer that looks like Alipay's
verified data. A value is sealed before it is written and opened after it is read; what does not open is not used.

    sealed = seal.seal(context, payload)   # "g1.<tag>.<payload>"
    payload = seal.open(context, sealed)   # the payload, or None: forged, moved, damaged, other key, other format
    raw = seal.open_bytes(context, data)   # the same for bytes as Redis returns them, without decoding the payload

The format is text (aiocache's StringSerializer stores it as it is; pub/sub carries it as a message):
``g1`` the format's version, then ``.``, the tag in unpadded base64url (22 characters), ``.``, the payload as
given. The tag is HMAC-SHA256 over the version, the context's length and the context, then the payload: the
length makes the split between context and payload unambiguous. The context is not stored: the reader must
know it (which store, under which key), so a value moved to another key, or from one store to another (a whole
response replayed as a gateway answer), does not open.

The tag is truncated to 128 bits (RFC 2104 section 5 recommends at least half the hash; NIST SP 800-107
permits truncation): a forger must guess it online, one write and one read by an instance per guess, and each
guess succeeds with probability 2^-128. The full 256 bits would add 21 characters to every value for nothing.

``refused`` is the one place a process reports what did not open: a WARNING at most once a minute, with the
count since the last one, so a flood of forged values cannot flood the log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import struct
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

log = logging.getLogger("graph.fleet.seal")

VERSION = "g1"
MIN_KEY_BYTES = 32
TAG_BYTES = 16
_TAG_CHARS = 22  # 16 bytes in unpadded base64
_HEAD = len(VERSION) + 1 + _TAG_CHARS + 1  # "g1." + tag + "."
_DOT = ord(".")
# HKDF's info for the key derived from the app's private key: a new label gives an unrelated key.
_DERIVE_LABEL = b"alipay-miniapp-graph fleet seal key v1"
REFUSED_LOG_INTERVAL_S = 60.0


class Seal:
    """Seals and opens text with one key. The key is never shown: not in the repr, not in any message."""

    __slots__ = ("_clock", "_last_warning", "_mac", "_prefix", "_unreported", "refusals")

    def __init__(self, key: bytes, *, clock: Callable[[], float] = time.monotonic) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"a seal key has at least {MIN_KEY_BYTES} bytes")
        self._mac = hmac.new(key, digestmod=hashlib.sha256)  # keyed once; each tag starts from a copy of it
        self._prefix = (VERSION + ".").encode()
        self._clock = clock
        self._unreported = 0
        self._last_warning = float("-inf")
        self.refusals = 0  # values that did not open, reported through ``refused``

    def __repr__(self) -> str:
        return f"Seal({VERSION}, key=***)"

    def seal(self, context: str, payload: str) -> str:
        """``payload`` sealed for ``context`` (what the reader will open it with)."""
        tag = self._tag(context.encode(), payload.encode())
        return f"{VERSION}.{tag.decode()}.{payload}"

    def open(self, context: str, sealed: str | bytes) -> str | None:
        """The payload when ``sealed`` was sealed with this key for this ``context``; None for anything else."""
        payload = self.open_bytes(context, sealed.encode() if isinstance(sealed, str) else sealed)
        return None if payload is None else payload.decode()  # sealed from a str: UTF-8

    def open_bytes(self, context: str, sealed: bytes) -> bytes | None:
        """``open`` for bytes, the payload left as UTF-8 bytes: parsers take them as they are (decoding a payload
        only for the parser to encode it again costs a hit more than the HMAC does)."""
        if len(sealed) < _HEAD or not sealed.startswith(self._prefix) or sealed[_HEAD - 1] != _DOT:
            return None
        payload = sealed[_HEAD:]
        if not hmac.compare_digest(self._tag(context.encode(), payload), sealed[len(self._prefix) : _HEAD - 1]):
            return None
        return payload

    def refused(self, what: str) -> None:
        """Count a value that did not open; log a WARNING at most once a minute, with the count since."""
        self.refusals += 1
        self._unreported += 1
        now = self._clock()
        if now - self._last_warning >= REFUSED_LOG_INTERVAL_S:
            log.warning(
                "values read from redis failed authentication and were ignored (forged, sealed with another"
                " GRAPH_CACHE_SIGNING_KEY or app key, or written by a version that did not seal)",
                extra={"store": what, "count": self._unreported},
            )
            self._unreported = 0
            self._last_warning = now

    def _tag(self, context: bytes, payload: bytes) -> bytes:
        mac = self._mac.copy()
        mac.update(self._prefix + struct.pack(">I", len(context)) + context)
        mac.update(payload)
        return base64.urlsafe_b64encode(mac.digest()[:TAG_BYTES])[:_TAG_CHARS]


def derive_key(private_key: rsa.RSAPrivateKey) -> bytes:
    """A seal key from the app's private key: every instance holding that key derives the same one, and it
    reveals nothing of the private key (HKDF-SHA256 is one-way).

    The input is the modulus and its two primes, smaller first, as fixed-width big-endian numbers: the same
    whatever the file's format (PKCS#1 or PKCS#8, PEM or bare base64) or the order its primes were written in."""
    numbers = private_key.private_numbers()
    width = (private_key.key_size + 7) // 8
    p, q = sorted((numbers.p, numbers.q))
    material = b"".join(n.to_bytes(width, "big") for n in (numbers.public_numbers.n, p, q))
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_DERIVE_LABEL).derive(material)
