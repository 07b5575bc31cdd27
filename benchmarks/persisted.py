"""Persisted queries: a hash-only GET answered by the response cache against a full-text POST hit, same run.

    python benchmarks/persisted.py [--duration 5]

Starts the sandbox gateway and the service (one uvicorn worker, default settings: APQ on) as separate processes
on loopback, registers the 68-field operation of benchmarks/speed.py by APQ, checks that both requests below are
response-cache hits, then loads the service with wrk (a Python load generator where wrk is absent), alternating:

  POST /graphql {"query": <the whole text>, "variables": ...}                    the plain request, a hit
  GET  /graphql?variables=...&extensions={"persistedQuery": {...}}             what Apollo Client sends, a hit
  GET  ... with extensions.clientLibrary too                                   Apollo Client 4's exact request

and prints, for each, requests per second and the service process's CPU time per request (steadier than
throughput on a shared machine), with their GET/POST ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlencode

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.processes import service_env, write_key_files  # noqa: E402
from benchmarks.speed import FULL, WALLET, cpu_seconds, free_port, process, report  # noqa: E402
from graph.sandbox import generate_credentials  # noqa: E402

VARIABLES = {"v": "0.0.1", "b": WALLET}
HASH = hashlib.sha256(FULL.encode()).hexdigest()
PERSISTED = {"persistedQuery": {"version": 1, "sha256Hash": HASH}}
CLIENT_LIBRARY = {"clientLibrary": {"name": "@apollo/client", "version": "4.3.8"}}


def load(url: str, method: str, body: str | None, duration: float, connections: int = 32) -> tuple[float, int]:
    """Requests per second and requests made, by wrk with one thread (or a Python generator without wrk)."""
    if shutil.which("wrk") is None:
        return asyncio.run(python_load(url, method, body, duration, connections))
    with tempfile.TemporaryDirectory() as tmp:
        lua = Path(tmp) / "load.lua"
        if method == "POST":
            lua.write_text(
                'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f"wrk.body = {json.dumps(body)}\n"
            )
        else:
            lua.write_text('wrk.method = "GET"\nwrk.headers["Accept"] = "application/json"\n')
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "-s", str(lua), url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    rate, total = re.search(r"Requests/sec:\s+([\d.]+)", out), re.search(r"(\d+) requests in", out)
    if rate is None or total is None or "Non-2xx" in out:
        raise SystemExit(f"wrk run failed:\n{out}")
    return float(rate.group(1)), int(total.group(1))


async def python_load(url: str, method: str, body: str | None, duration: float, connections: int) -> tuple[float, int]:
    done = 0
    deadline = time.monotonic() + duration
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=connections), timeout=30) as http:

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                response = await http.request(method, url, content=body, headers=headers)
                response.raise_for_status()
                done += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
    return done / duration, done


def get_url(service: str, extensions: Mapping[str, object]) -> str:
    query = urlencode({"variables": json.dumps(VARIABLES), "extensions": json.dumps(extensions)})
    return f"{service}/graphql?{query}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each request, alternated")
    args = parser.parse_args()

    demo = generate_credentials()
    tmp = write_key_files(demo, "persisted-")
    sandbox_port, service_port = free_port(), free_port()
    env = service_env(
        tmp,
        demo.app_id,
        sandbox_port,
        GRAPH_CACHE_TTL_S="3600",  # the stored response outlives the runs
    )
    py = sys.executable
    sandbox = [py, "-m", "benchmarks.processes", "sandbox", "--port", str(sandbox_port), "--keys", str(tmp)]
    serve = [py, "-m", "graph", "serve", "--port", str(service_port)]
    service = f"http://127.0.0.1:{service_port}"
    post_url = f"{service}/graphql"
    post_body = json.dumps({"query": FULL, "variables": VARIABLES})
    hashed, apollo = get_url(service, PERSISTED), get_url(service, {**CLIENT_LIBRARY, **PERSISTED})
    report(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; load: "
        f"{'wrk -t1 -c32' if shutil.which('wrk') else 'Python generator, 32 connections'}, {args.duration:.0f} s runs"
    )
    with process(sandbox, sandbox_port), process(serve, service_port, env) as served:
        registered = httpx.post(post_url, json={"query": FULL, "variables": VARIABLES, "extensions": PERSISTED})
        assert registered.status_code == 200, registered.text
        assert "errors" not in registered.json(), registered.text
        for url, method, body in ((post_url, "POST", post_body), (hashed, "GET", None), (apollo, "GET", None)):
            answer = httpx.request(method, url, content=body, headers={"Content-Type": "application/json"})
            assert answer.headers.get("x-response-cache") == "hit", f"{method} was not a response-cache hit"
        assert httpx.get(hashed).headers["cache-control"].startswith("private, max-age=")
        for url, method, body in ((post_url, "POST", post_body), (hashed, "GET", None)):
            load(url, method, body, 1)  # warm-up
        kinds = {"post": (post_url, "POST", post_body), "get": (hashed, "GET", None), "apollo": (apollo, "GET", None)}
        rates: dict[str, list[float]] = {name: [] for name in kinds}
        cpu: dict[str, list[float]] = {name: [] for name in kinds}
        for _ in range(args.rounds):  # alternate, so drift on a shared machine hits all alike
            for name, (url, method, body) in kinds.items():
                before = cpu_seconds(served.pid)
                per_second, total = load(url, method, body, args.duration)
                rates[name].append(per_second)
                cpu[name].append((cpu_seconds(served.pid) - before) / total * 1e6)
    shutil.rmtree(tmp)

    rate = {name: statistics.median(values) for name, values in rates.items()}
    cost = {name: statistics.median(values) for name, values in cpu.items()}
    report()
    report(
        f"{'request (all response-cache hits, 68-field answer)':58}"
        f"{'req/s':>8}{'ratio':>7}{'CPU µs/req':>12}{'ratio':>7}"
    )
    for name, label in (
        ("post", "POST full text"),
        ("get", "GET hash only (APQ)"),
        ("apollo", "GET hash only + clientLibrary (Apollo Client 4 as sent)"),
    ):
        report(
            f"{label:58}{rate[name]:8.0f}{rate[name] / rate['post']:7.2f}"
            f"{cost[name]:12.0f}{cost[name] / cost['post']:7.2f}"
        )
    report(f"query text {len(FULL)} characters; hash-only GET URL {len(hashed) - len(service)} characters")


if __name__ == "__main__":
    main()
