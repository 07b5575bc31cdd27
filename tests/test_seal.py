"""graph.fleet.seal on its own: the format, what does not open, the key derived from the app key, the warning's
rate. End to end through Redis and real instances: tests/test_integrity.py."""

from __future__ import annotations

import base64
import logging

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from graph.data.cache import Entry, open_cache
from graph.fleet.seal import MIN_KEY_BYTES, Seal, derive_key
from graph.gateway.keys import load_private_key
from tests.keyfixtures import KeyMaterial, app_keys, other_keys

__all__ = ["app_keys", "other_keys"]  # session fixtures used by name below

KEY = b"k" * MIN_KEY_BYTES
CONTEXT = "gateway:alipay.open.mini.version.detail.query:" + "ab" * 32
PAYLOAD = '{"k":"ok","p":{"status":"RELEASE","app_desc":"小程序demo\\n"},"t":1.5}'


def test_a_sealed_value_is_text_that_opens_with_its_context() -> None:
    seal = Seal(KEY)
    sealed = seal.seal(CONTEXT, PAYLOAD)
    version, tag, payload = sealed.split(".", 2)
    assert (version, payload) == ("g1", PAYLOAD)
    assert len(base64.urlsafe_b64decode(tag + "==")) == 16  # 128 bits, 22 characters
    assert seal.open(CONTEXT, sealed) == PAYLOAD
    assert seal.open(CONTEXT, sealed.encode()) == PAYLOAD  # as Redis gives it back
    assert Seal(KEY).open(CONTEXT, sealed) == PAYLOAD  # another instance holding the key
    assert seal.seal(CONTEXT, "") == seal.seal(CONTEXT, "")  # deterministic: nothing random in it


def test_what_does_not_open() -> None:
    seal = Seal(KEY)
    sealed = seal.seal(CONTEXT, PAYLOAD)
    head, payload = sealed[:26], sealed[26:]
    flipped_tag = head[:5] + ("A" if head[5] != "A" else "B") + head[6:]
    refused: dict[str, str | bytes] = {
        "another key": Seal(b"K" * MIN_KEY_BYTES).seal(CONTEXT, PAYLOAD),
        "a changed payload": head + payload.replace("RELEASE", "OFFLINE"),
        "a changed tag": flipped_tag + payload,
        "unsealed": PAYLOAD,
        "another version": "g2" + sealed[2:],
        "no separator": head[:-1] + "-" + payload,
        "truncated": sealed[:20],
        "empty": "",
        "not UTF-8": b"\xff\xfe" + sealed.encode(),
    }
    for what, value in refused.items():
        assert seal.open(CONTEXT, value) is None, what
    assert seal.open(CONTEXT.replace("gateway:", "response:"), sealed) is None  # another store, same key
    assert seal.open(CONTEXT + "0", sealed) is None  # another key


def test_the_context_and_the_payload_cannot_trade_characters() -> None:
    # Without the context's length in what is signed, ("key", "Xvalue") and ("keyX", "value") would share a tag.
    seal = Seal(KEY)
    tag = seal.seal("response:key", "Xvalue")[3:25]
    assert seal.open("response:keyX", f"g1.{tag}.value") is None


def test_a_short_key_is_refused_and_no_key_is_ever_shown() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Seal(b"k" * (MIN_KEY_BYTES - 1))
    secret = b"s3cret-" * 6
    assert "s3cret" not in repr(Seal(secret)) + str(Seal(secret))


def test_the_derived_key_is_the_same_from_every_form_of_one_app_key(
    app_keys: KeyMaterial, other_keys: KeyMaterial
) -> None:
    forms = [app_keys.pkcs1_pem, app_keys.pkcs8_pem, app_keys.pkcs1_b64, app_keys.pkcs8_b64]
    derived = {derive_key(load_private_key(form, "test")) for form in forms}
    assert len(derived) == 1
    [key] = derived
    assert len(key) == 32
    # The primes written the other way round (another tool's file) are the same key, so the same seal key.
    numbers = app_keys.private.private_numbers()
    p, q, d = numbers.q, numbers.p, numbers.d
    swapped = rsa.RSAPrivateNumbers(
        p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q), numbers.public_numbers
    ).private_key()
    assert derive_key(swapped) == key
    assert derive_key(other_keys.private) != key
    # Nothing of the private key in it: no 8-byte run of the modulus or the primes.
    width = app_keys.private.key_size // 8
    material = b"".join(n.to_bytes(width, "big") for n in (numbers.public_numbers.n, numbers.p, numbers.q))
    assert not any(key[i : i + 8] in material for i in range(len(key) - 7))


def test_refusals_warn_once_a_minute_with_the_count_since(caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    seal = Seal(KEY, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="graph.fleet.seal"):
        seal.refused("gateway")
        for _ in range(5):
            now[0] += 10
            seal.refused("response")
        assert len(caplog.records) == 1  # 50 s later, five more: counted, not logged
        now[0] += 10
        seal.refused("gateway")
    first, second = caplog.records
    assert (first.levelno, first.store, first.count) == (logging.WARNING, "gateway", 1)  # type: ignore[attr-defined]
    assert (second.store, second.count) == ("gateway", 6)  # type: ignore[attr-defined]
    assert "failed authentication" in first.getMessage()
    assert seal.refusals == 7


async def test_the_memory_backend_keeps_values_unsealed() -> None:
    # Nothing in process leaves it: no CPU spent on a MAC, and what is kept is the codec's text as it is.
    cache = open_cache("memory://", max_bytes=1 << 20, max_entries=10, seal=Seal(KEY))
    entry = Entry("ok", {"status": "RELEASE"}, 1.0)
    await cache.set("k", entry, 60)
    assert cache.backend.get("k") == entry.dumps()
    assert await cache.get("k") == entry
