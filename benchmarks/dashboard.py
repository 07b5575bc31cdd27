"""The release dashboard (graph/ide/example.graphql), measured: gateway calls cold and warm, and latency.

    python benchmarks/dashboard.py [--latency 0.3] [--rounds 7] [--extra 5]

Starts the sandbox gateway (with an injected latency; the demo's five versions plus ``--extra`` more on Alipay, so
that the dashboard's ``first: 10`` lists ten) and the service as real servers on loopback, then prints:
  1. gateway calls of the dashboard query cold (nothing cached), then warm (the same request again, and the same
     calls in another shape, which the response cache cannot answer);
  2. its wall time with every answer fresh (``Cache-Control: no-cache``) beside one ``miniAppVersion`` (one
     gateway call), alternating rounds of the same run. Two waves of calls (base info and list together, then
     every detail and trial build together) make the dashboard two gateway round trips, as long as the second
     wave fits in ``--max-concurrency`` (GRAPH_MAX_CONCURRENCY, 16 by default: ten versions need 20).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from graph.app import create_app
from graph.config import Settings
from graph.gateway.client import Credentials
from graph.gateway.keys import load_private_key, load_public_key
from graph.sandbox import SEED_VERSIONS, SandboxGateway, generate_credentials
from tests.servers import serve

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = (ROOT / "graph" / "ide" / "example.graphql").read_text(encoding="utf-8")
RESHAPED = "{ miniApp { logo: appLogo versions(first: 10) { v: appVersion detail { status } experience { status } } } }"
ONE = 'query { miniAppVersion(appVersion: "0.0.1") { appVersion status grayPercentage } }'
NO_CACHE = {"Cache-Control": "no-cache"}


async def ask(http: httpx.AsyncClient, query: str, headers: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    response = await http.post("/graphql", json={"query": query}, headers=headers or {})
    elapsed = time.perf_counter() - started
    body: dict[str, Any] = response.json()
    if response.status_code != 200 or "errors" in body:
        raise SystemExit(f"benchmark query failed: {response.text[:300]}")
    return elapsed


def report(line: str) -> None:
    sys.stdout.write(line + "\n")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.3, help="seconds the sandbox waits before each answer")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--extra", type=int, default=5, help="versions 2.0.0, 2.0.1, ... added on Alipay")
    parser.add_argument("--max-concurrency", type=int, default=None, help="GRAPH_MAX_CONCURRENCY (default: 16)")
    args = parser.parse_args()

    demo = generate_credentials()
    alipay = "com.alipay.alipaywallet"
    versions = dict(SEED_VERSIONS)
    for i in range(args.extra):
        versions[f"2.0.{i}", alipay] = {**SEED_VERSIONS["0.0.2", alipay], "app_version": f"2.0.{i}"}
    sandbox = SandboxGateway(
        alipay_private_key=demo.alipay_private_key, apps={demo.app_id: demo.app_public_key}, versions=versions
    )
    credentials = Credentials(
        demo.app_id,
        load_private_key(demo.app_private_key_pem, "benchmark app key"),
        load_public_key(demo.alipay_public_key_pem, "benchmark Alipay key"),
    )
    with serve(sandbox.app) as gateway:
        settings = Settings(credentials=credentials, gateway_url=f"{gateway}/gateway.do", allow_anonymous=True)
        if args.max_concurrency is not None:
            settings = replace(settings, max_concurrency=args.max_concurrency)
        with serve(create_app(settings), lifespan="on") as url:
            sandbox.latency_s = args.latency
            async with httpx.AsyncClient(base_url=url, timeout=60) as http:
                cold_s = await ask(http, DASHBOARD)
                cold_calls, cold_max = len(sandbox.calls), sandbox.max_in_flight
                by_method = sorted({str(call.api) for call in sandbox.calls})
                warm_s = await ask(http, DASHBOARD)
                await ask(http, RESHAPED)
                warm_calls = len(sandbox.calls) - cold_calls
                ones, dashboards = [], []
                for _ in range(args.rounds):  # alternate, so drift on a shared machine hits both alike
                    ones.append(await ask(http, ONE, NO_CACHE))
                    dashboards.append(await ask(http, DASHBOARD, NO_CACHE))
    one, dashboard = statistics.median(ones), statistics.median(dashboards)
    listed = sum(1 for _, bundle in versions if bundle == alipay)
    report(f"gateway latency injected: {args.latency * 1000:.0f} ms; {listed} versions on Alipay, the newest 10 asked")
    report(f"GRAPH_MAX_CONCURRENCY: {settings.max_concurrency} gateway calls in flight at most")
    report(f"dashboard cold: {cold_calls} gateway calls ({', '.join(by_method)}), at most {cold_max} at once")
    report(f"dashboard cold wall time: {cold_s * 1000:.1f} ms; warm (response cache): {warm_s * 1000:.1f} ms")
    report(f"dashboard warm, and the same calls reshaped: {warm_calls} gateway calls")
    report(f"medians of {args.rounds} alternating rounds, every answer fresh (Cache-Control: no-cache):")
    report(f"  {'one miniAppVersion (1 call):':34}{one * 1000:8.1f} ms")
    report(f"  {f'dashboard ({cold_calls} calls):':34}{dashboard * 1000:8.1f} ms  ratio {dashboard / one:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
