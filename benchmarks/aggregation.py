"""The aggregation data path, measured: fan-out, single-flight, and the memory bound of the cache.

    python benchmarks/aggregation.py [--latency 0.3] [--rounds 7] [--concurrent 100]

Starts the sandbox gateway (with an injected latency) and the service as real servers on loopback, then
prints, each next to its baseline measured in the same run:
  1. wall time of a 5-client ``miniAppVersions`` against one ``miniAppVersion`` (one gateway call); target <= 1.2
  2. gateway calls made by N concurrent identical cold queries; target 1
  3. memory held after 100k distinct keys with the default bound (10000) against after 10k; target within 10 %
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import gc
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from graph.app import create_app
from graph.config import Settings
from graph.data.cache import Entry, open_cache
from graph.gateway.client import Credentials
from graph.gateway.keys import load_private_key, load_public_key
from graph.sandbox import SEED_VERSIONS, SandboxGateway, generate_credentials
from tests.servers import serve

ONE = 'query { miniAppVersion(appVersion: "0.0.1") { appVersion status } }'
FIVE = 'query { miniAppVersions(appVersion: "0.0.1") { ... on MiniAppVersion { bundleId status } } }'
NO_CACHE = {"Cache-Control": "no-cache"}  # every round goes to the gateway


async def timed(http: httpx.AsyncClient, query: str) -> float:
    started = time.perf_counter()
    response = await http.post("/graphql", json={"query": query}, headers=NO_CACHE)
    elapsed = time.perf_counter() - started
    if response.status_code != 200 or "errors" in response.json():
        raise SystemExit(f"benchmark query failed: {response.text[:300]}")
    return elapsed


async def fan_out(url: str, rounds: int) -> tuple[float, float]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        await timed(http, ONE)  # warm the connection pools on both sides
        ones, fives = [], []
        for _ in range(rounds):  # alternate, so drift on a shared machine hits both alike
            ones.append(await timed(http, ONE))
            fives.append(await timed(http, FIVE))
    return statistics.median(ones), statistics.median(fives)


async def stampede(url: str, sandbox: SandboxGateway, concurrent: int) -> int:
    sandbox.reset()
    sandbox.latency_s = 0.3
    limits = httpx.Limits(max_connections=concurrent)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        query = 'query { miniAppVersion(appVersion: "0.1.0", bundleId: "com.amap.app") { status } }'
        responses = await asyncio.gather(*(http.post("/graphql", json={"query": query}) for _ in range(concurrent)))
    if any(r.status_code != 200 or "errors" in r.json() for r in responses):
        raise SystemExit("a stampede query failed")
    return len(sandbox.calls)


async def memory_bound(max_entries: int) -> tuple[float, float]:
    """Traced memory (MiB) held by the memory cache after 10k and after 100k distinct keys, default bound."""
    node = dict(SEED_VERSIONS[("0.0.1", "com.alipay.alipaywallet")])
    cache = open_cache("memory://", max_bytes=Settings(credentials=None).cache_max_bytes, max_entries=max_entries)
    gc.collect()
    tracemalloc.start()
    readings = {}
    for i in range(100_000):
        # A fresh copy per key: each cached answer is its own parsed node, as on the real path.
        await cache.set(f"alipay.open.mini.version.detail.query:{i:064x}", Entry("ok", copy.deepcopy(node), 0.0), 60)
        if i % 100 == 0:
            await asyncio.sleep(0)  # let the event loop run, as it does between requests in the service
        if i + 1 in (10_000, 100_000):
            gc.collect()
            readings[i + 1] = tracemalloc.get_traced_memory()[0] / 2**20
    tracemalloc.stop()
    return readings[10_000], readings[100_000]


def report(line: str) -> None:
    sys.stdout.write(line + "\n")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.3, help="seconds the sandbox waits before each answer")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--concurrent", type=int, default=100)
    args = parser.parse_args()

    demo = generate_credentials()
    sandbox = SandboxGateway.for_credentials(demo)
    credentials = Credentials(
        demo.app_id,
        load_private_key(demo.app_private_key_pem, "benchmark app key"),
        load_public_key(demo.alipay_public_key_pem, "benchmark Alipay key"),
    )
    with serve(sandbox.app) as gateway:
        settings = Settings(credentials=credentials, gateway_url=f"{gateway}/gateway.do", allow_anonymous=True)
        with serve(create_app(settings), lifespan="on") as url:
            sandbox.latency_s = args.latency
            one, five = await fan_out(url, args.rounds)
            calls = await stampede(url, sandbox, args.concurrent)
    mem_10k, mem_100k = await memory_bound(Settings(credentials=None).cache_max_entries)

    report(f"gateway latency injected: {args.latency * 1000:.0f} ms; medians of {args.rounds} alternating rounds")
    report(f"{'measure':58}{'value':>12}{'baseline':>12}{'ratio':>8}  target")
    report(
        f"{'5-client miniAppVersions vs one miniAppVersion (ms)':58}{five * 1000:12.1f}{one * 1000:12.1f}"
        f"{five / one:8.2f}  <= 1.2"
    )
    report(
        f"{f'gateway calls for {args.concurrent} concurrent identical cold queries':58}{calls:12d}{1:12d}"
        f"{calls:8.2f}  1"
    )
    report(
        f"{'memory cache after 100k distinct keys vs 10k (MiB traced)':58}{mem_100k:12.1f}{mem_10k:12.1f}"
        f"{mem_100k / mem_10k:8.2f}  <= 1.10"
    )


if __name__ == "__main__":
    asyncio.run(main())
