"""What sealing costs a Redis cache hit and write: HMAC-SHA256 (graph.fleet.seal) against no seal, same run, and
against verifying Alipay's RSA2 signature again (the alternative the README weighs).

    python benchmarks/seal.py [--rounds 20000] [--redis]

A hit is what ``AnswerCache.get`` does with the bytes Redis gave: unsealed, the codec's parse; sealed, opening the
seal, then the same parse. A write is the codec's text, then sealing it. Values: the sandbox's fullest version
answer (every field, ~2.4 KB as cached) and a whole response of four such versions (~9 KB). Prints the fastest
of many batches, in µs per operation. With ``--redis`` (needs redis-server on PATH) it also times real ``get``
round trips through the cache, sealed and not, on a private redis-server started for the run.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import time
from collections.abc import Callable

import orjson
from cryptography.hazmat.primitives.asymmetric import rsa

from graph.data.cache import ENTRIES, Entry, open_cache
from graph.data.responses import RESPONSES, CachedResponse
from graph.fleet.seal import Seal
from graph.gateway import signing
from graph.sandbox.seed import DEFAULT_BUNDLE_ID, SEED_VERSIONS

CONTEXT = "gateway:alipay.open.mini.version.detail.query:" + "0f" * 32
BATCH = 200


def per_op_us(*actions: Callable[[], object], rounds: int) -> list[float]:
    """For each action, the fastest of many batches of BATCH calls, in µs per call (the timeit module's advice: on
    a shared machine slower batches measure the neighbours). Batches of the actions alternate."""
    samples: list[list[float]] = [[] for _ in actions]
    for _ in range(max(1, rounds // BATCH)):
        for action, kept in zip(actions, samples, strict=True):
            start = time.perf_counter()
            for _ in range(BATCH):
                action()
            kept.append((time.perf_counter() - start) * 1e6 / BATCH)
    return [min(kept) for kept in samples]


def _values() -> dict[str, tuple[str, Callable[[str | bytes], object]]]:
    node = dict(SEED_VERSIONS[("0.0.1", DEFAULT_BUNDLE_ID)])
    entry = ENTRIES.dumps(Entry("ok", node, time.time()))
    versions = [dict(SEED_VERSIONS[(v, DEFAULT_BUNDLE_ID)]) for v in ("0.0.1", "0.0.2", "0.1.0", "1.0.0")]
    body = orjson.dumps({"data": {"app": {"versions": versions}}})
    response = RESPONSES.dumps(CachedResponse(body, True, time.time(), time.time() + 60, "Dashboard", "ok", ()))
    return {"gateway answer": (entry, ENTRIES.loads), "whole response": (response, RESPONSES.loads)}


def cpu(rounds: int) -> None:
    seal = Seal(b"benchmark-seal-key-0123456789abcdef")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key()
    print(f"{'':16}{'bytes':>7}{'hit plain':>11}{'hit sealed':>12}{'+ seal':>9}{'write +':>9}{'RSA2 verify':>13}")  # noqa: T201
    for name, (text, loads) in _values().items():
        sealed = seal.seal(CONTEXT, text).encode()
        raw = text.encode()
        assert loads(seal.open(CONTEXT, sealed) or "") == loads(raw)
        plain_us, sealed_us, write_us = per_op_us(
            lambda raw=raw, loads=loads: loads(raw),  # type: ignore[misc]
            lambda sealed=sealed, loads=loads: loads(seal.open_bytes(CONTEXT, sealed) or b""),  # type: ignore[misc]
            lambda text=text: seal.seal(CONTEXT, text),  # type: ignore[misc]
            rounds=rounds,
        )
        signature = signing.sign(raw, key, signing.SignType.RSA2)
        [verify_us] = per_op_us(
            lambda raw=raw, signature=signature: signing.verify(  # type: ignore[misc]
                raw, signature, public, signing.SignType.RSA2
            ),
            rounds=max(BATCH, rounds // 20),
        )
        print(  # noqa: T201
            f"{name:16}{len(raw):7d}{plain_us:11.2f}{sealed_us:12.2f}{sealed_us - plain_us:9.2f}{write_us:9.2f}"
            f"{verify_us:13.1f}"
        )
    print(f"µs per operation, fastest of {max(1, rounds // BATCH)} batches of {BATCH}; one process")  # noqa: T201


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _round_trips(url: str, rounds: int) -> tuple[float, float]:
    entry = Entry("ok", dict(SEED_VERSIONS[("0.0.1", DEFAULT_BUNDLE_ID)]), time.time())
    plain = open_cache(url, max_bytes=1 << 20, max_entries=10)
    sealed = open_cache(url, max_bytes=1 << 20, max_entries=10, seal=Seal(b"benchmark-seal-key-0123456789abcdef"))
    await plain.set("plain", entry, 60)
    await sealed.set("sealed", entry, 60)
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):  # alternating, like the CPU figures
        for cache, name, kept in ((plain, "plain", samples[0]), (sealed, "sealed", samples[1])):
            start = time.perf_counter()
            assert await cache.get(name) == entry
            kept.append((time.perf_counter() - start) * 1e6)
    await plain.close()
    await sealed.close()
    return statistics.median(samples[0]), statistics.median(samples[1])


def redis(rounds: int) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        print("--redis: redis-server is not on PATH")  # noqa: T201
        return
    port = _free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.3)
        plain, sealed = asyncio.run(_round_trips(f"redis://127.0.0.1:{port}/0", rounds))
    finally:
        server.kill()
        server.wait()
    print(f"redis get of a gateway answer (round trip + parse): plain {plain:.1f} µs, sealed {sealed:.1f} µs")  # noqa: T201


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20000)
    parser.add_argument("--redis", action="store_true", help="also time real round trips to a private redis-server")
    args = parser.parse_args()
    cpu(args.rounds)
    if args.redis:
        redis(min(args.rounds, 5000))


if __name__ == "__main__":
    main()
