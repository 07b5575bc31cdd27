"""Issue 14's attacks, each run against real service processes, one figure a line.

    python benchmarks/attacks.py [--checkout PATH] [--only 1,3,8]

``--checkout`` is the source tree the service runs from (default: this repository), so one script measures an
older commit and the current one alike. Every service is ``python -m graph serve`` started with ``cwd`` and
``PYTHONPATH`` at the checkout, settings at their defaults unless an attack says otherwise (its log at WARNING,
attack 8's at INFO). The gateway is this repository's sandbox (protocol-compatible with older checkouts), served
in this process with uvicorn on a free port, one per attack, so its call log counts what Alipay would have seen.
Attacks 4 to 6 share a real ``redis-server`` (tests/redis_server.py) between instances. What each prints:

  1 no-cache flood     10 rounds of miniAppVersions for 4 versions (5 clients each), Cache-Control: no-cache,
                       the 4 requests of a round at once: gateway calls; RSS at the end
  2 quota drain        one API key (default rate limit) sending cold queries (4 new versions x 5 clients, 8 at
                       once) for 10 s: gateway calls, the steady rate of the last 5 s x 12 as calls a minute
                       (ALIPAY_MAX_CALLS_PER_MIN, where it exists, lets a burst of its size through first);
                       RSS at the end
  3 wrong-key burst    7,500 requests with wrong API keys from one address, 50 at once: how many were compared
                       (401) and how many refused (429); /healthz p99 polled every 20 ms meanwhile; RSS at the end
  4 fleet rate limit   3 instances on one Redis, one key, GRAPH_RATE_LIMIT_PER_MIN=60, 300 requests round-robin
                       (10 at once): allowed
  5 fleet cold key     3 instances on one Redis, 12 cold keys asked 5x on each instance at once, the gateway
                       slowed to 0.4 s: gateway calls
  6 forged Redis entry 2 instances on one Redis; the gateway answer instance A stored is overwritten in Redis by
                       one saying canRelease true, grayPercentage 100 (the checkout's codec, any seal left as it
                       was: an attacker has no key); instance B asked another selection of the same version:
                       which values it served
  7 gateway down       GRAPH_CACHE_TTL_S=1: a query, the gateway stopped, 2 s, the query again: data or error
  8 text log forging   GRAPH_LOG_FORMAT=text, GET /%0d%0aCRITICAL%20forged: whether a log line starts with the
                       fake level

Counts are what to compare; the machine is shared, so timings (p99, the drain's rate) move between runs.
About 1 to 1.5 minutes for all eight. benchmarks/attacks.md has the runs before and after as a table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import orjson
from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from benchmarks.speed import free_port, report  # noqa: E402
from graph.sandbox import DemoCredentials, Fault, SandboxGateway, generate_credentials  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402
from tests.servers import serve  # noqa: E402

API_KEY = "gk_bench_7f3a9c1e5b2d4f6a8c0e2b4d6f8a1c3e"
VERSIONS = ["0.0.1", "0.0.2", "0.1.0", "1.0.0"]
CLIENTS = ["com.alipay.alipaywallet", "com.alibaba.android.rimet", "com.amap.app"]
RESULT = "{ ... on MiniAppVersion { bundleId status } ... on MiniAppVersionError { bundleId code } }"
ALL_CLIENTS = f"query($v: String!) {{ miniAppVersions(appVersion: $v) {RESULT} }}"
FOUR_COLD = (
    "query($a: String!, $b: String!, $c: String!, $d: String!) {"
    + "".join(f" {n}: miniAppVersions(appVersion: ${n}) {RESULT}" for n in "abcd")
    + " }"
)
STATUS = "query($v: String!, $b: String!) { miniAppVersion(appVersion: $v, bundleId: $b) { appVersion status } }"
FORGED_VERSION = "1.0.0"  # the wallet's: canRelease false, no grayPercentage
RELEASE_A = f'{{ miniAppVersion(appVersion: "{FORGED_VERSION}") {{ canRelease grayPercentage }} }}'
RELEASE_B = f'{{ miniAppVersion(appVersion: "{FORGED_VERSION}") {{ appVersion grayPercentage canRelease }} }}'


class Service:
    """``python -m graph serve`` from ``checkout`` in its own process, its output to ``log``."""

    def __init__(self, checkout: Path, env: dict[str, str], log: Path) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        base = {k: v for k, v in os.environ.items() if not k.startswith(("ALIPAY_", "GRAPH_"))}
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "graph", "serve", "--host", "127.0.0.1", "--port", str(port)],
                cwd=checkout,
                env={**base, "PYTHONPATH": str(checkout), "GRAPH_LOG_LEVEL": "WARNING", **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    async def ready(self) -> None:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as http:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/readyz")).status_code == 200:
                        return
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the service did not start:\n{self.log.read_text()[-2000:]}")
                await asyncio.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Bench:
    """What every attack shares: the checkout, one set of keys, a folder for logs, the processes to stop."""

    def __init__(self, checkout: Path, work: Path) -> None:
        self.checkout = checkout
        self.work = work
        self.creds: DemoCredentials = generate_credentials()
        self.stack = contextlib.ExitStack()
        self.logs = 0

    def sandbox(self, stack: contextlib.ExitStack | None = None) -> tuple[SandboxGateway, str]:
        """A fresh sandbox gateway served until ``stack`` (the attack's) closes; its gateway.do URL."""
        gateway = SandboxGateway.for_credentials(self.creds)
        url = (stack or self.stack).enter_context(serve(gateway.app))
        return gateway, f"{url}/gateway.do"

    def env(self, gateway_url: str, **settings: str) -> dict[str, str]:
        return {
            "ALIPAY_APP_ID": self.creds.app_id,
            "ALIPAY_APP_PRIVATE_KEY": self.creds.app_private_key_pem,
            "ALIPAY_PUBLIC_KEY": self.creds.alipay_public_key_pem,
            "ALIPAY_GATEWAY_URL": gateway_url,
            "GRAPH_ALLOW_ANONYMOUS": "true",
            **settings,
        }

    async def services(self, count: int, env: dict[str, str]) -> list[Service]:
        started = []
        for _ in range(count):
            self.logs += 1
            one = Service(self.checkout, env, self.work / f"service-{self.logs}.log")
            self.stack.callback(one.stop)
            started.append(one)
        await asyncio.gather(*(one.ready() for one in started))
        return started

    def redis(self) -> RedisServer:
        server = RedisServer()
        server.start()
        self.stack.callback(server.stop)
        return server


async def pool(count: int, concurrency: int, one: Callable[[int], Awaitable[Any]]) -> list[Any]:
    """``one(0) ... one(count - 1)``, ``concurrency`` at a time; their results in completion order."""
    numbers = iter(range(count))
    results: list[Any] = []

    async def worker() -> None:
        for i in numbers:
            results.append(await one(i))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def error_codes(body: dict[str, Any]) -> list[str]:
    return [str((e.get("extensions") or {}).get("code")) for e in body.get("errors") or []]


async def no_cache_flood(bench: Bench) -> str:
    gateway, url = bench.sandbox()
    [service] = await bench.services(1, bench.env(url))
    async with httpx.AsyncClient(base_url=service.url, timeout=60) as http:
        for _ in range(10):
            answers = await asyncio.gather(
                *(
                    http.post(
                        "/graphql",
                        json={"query": ALL_CLIENTS, "variables": {"v": v}},
                        headers={"Cache-Control": "no-cache"},
                    )
                    for v in VERSIONS
                )
            )
            for answer in answers:
                if answer.status_code != 200 or "errors" in answer.json():
                    raise RuntimeError(f"the flood's query failed: {answer.text[:200]}")
    return (
        f"gateway calls {len(gateway.calls)} for 40 requests (4 versions x 5 clients); RSS {service.rss_mib():.0f} MiB"
    )


async def quota_drain(bench: Bench, seconds: float = 10.0) -> str:
    gateway, url = bench.sandbox()
    env = bench.env(url, GRAPH_API_KEYS=API_KEY, GRAPH_ALLOW_ANONYMOUS="false")
    [service] = await bench.services(1, env)
    outcomes: Counter[str] = Counter()
    fresh = iter(range(10**9))
    started = time.monotonic()
    refused_at: list[tuple[float, int]] = []  # when a request was first refused for the budget, calls by then

    async def attacker(http: httpx.AsyncClient) -> None:
        while time.monotonic() - started < seconds:
            variables = {n: f"9.{next(fresh)}" for n in "abcd"}  # never asked before: every one a gateway call
            answer = await http.post("/graphql", json={"query": FOUR_COLD, "variables": variables})
            if answer.status_code != 200:
                outcomes[f"HTTP {answer.status_code}"] += 1
                continue
            body = answer.json()
            if "data" not in body:  # a refused document would make the drain measure nothing
                raise RuntimeError(f"the drain's query failed: {answer.text[:200]}")
            codes = set(error_codes(body)) | {
                str(item.get("code")) for items in (body["data"] or {}).values() for item in items or []
            }
            if "ALIPAY_UNAVAILABLE" in codes:
                outcomes["ALIPAY_UNAVAILABLE"] += 1
                if not refused_at:
                    refused_at.append((time.monotonic(), len(gateway.calls)))
            else:
                outcomes["answered"] += 1

    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(base_url=service.url, timeout=60, headers=headers) as http:
        await asyncio.gather(*(attacker(http) for _ in range(8)))
    ended, calls = time.monotonic(), len(gateway.calls)
    requests = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
    if refused_at and ended - refused_at[0][0] >= 1.0:
        at, then = refused_at[0]
        rate = f"{(calls - then) * 60 / (ended - at):,.0f}/min once refusals began ({ended - at:.1f} s)"
    else:
        rate = f"{calls * 60 / (ended - started):,.0f}/min extrapolated, nothing refused"
    rss = service.rss_mib()
    return f"gateway calls {calls} in {ended - started:.0f} s, {rate}; requests: {requests}; RSS {rss:.0f} MiB"


async def raw_posts(url: str, bodies: Iterator[bytes], statuses: Counter[int]) -> None:
    """Send each request of ``bodies`` (whole HTTP/1.1 requests) on one keep-alive connection, reconnecting when
    the server closes it, and count the answers' statuses. A raw client: httpx's own CPU per request would be what
    the burst measured on a 2-core machine."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        for request in bodies:
            for _ in range(3):
                try:
                    writer.write(request)
                    head = await reader.readuntil(b"\r\n\r\n")
                    break
                except (asyncio.IncompleteReadError, ConnectionError):
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, int(port))
            else:
                statuses[0] += 1  # never answered
                continue
            lines = head.decode("latin-1").lower().split("\r\n")
            fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
            await reader.readexactly(int(fields.get("content-length", "0")))
            statuses[int(lines[0].split()[1])] += 1
            if fields.get("connection") == "close":
                writer.close()
                reader, writer = await asyncio.open_connection(host, int(port))
    finally:
        writer.close()


async def wrong_key_burst(bench: Bench, count: int = 7500, concurrency: int = 50) -> str:
    _, url = bench.sandbox()
    env = bench.env(url, GRAPH_API_KEYS=API_KEY, GRAPH_ALLOW_ANONYMOUS="false")
    [service] = await bench.services(1, env)
    statuses: Counter[int] = Counter()
    health: list[float] = []
    done = asyncio.Event()

    async def poll() -> None:
        async with httpx.AsyncClient(base_url=service.url, timeout=10) as http:
            while not done.is_set():
                started = time.perf_counter()
                with contextlib.suppress(httpx.TransportError):
                    await http.get("/healthz")
                health.append(time.perf_counter() - started)
                await asyncio.sleep(0.02)

    body = b'{"query":"{ __typename }"}'
    requests = iter(
        b"POST /graphql HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer gk_guess_{i:08d}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
        for i in range(count)
    )
    poller = asyncio.create_task(poll())
    await asyncio.sleep(0.1)  # a first poll before the burst
    started = time.monotonic()
    await asyncio.gather(*(raw_posts(service.url, requests, statuses) for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    done.set()
    await poller
    health.sort()
    p50, p99 = (health[min(len(health) - 1, int(len(health) * q))] * 1000 for q in (0.5, 0.99))
    others = sum(n for s, n in statuses.items() if s not in (401, 429))
    return (
        f"{count} wrong keys in {elapsed:.1f} s: 401 (compared) {statuses[401]}, 429 {statuses[429]}, "
        f"other {others}; /healthz p50 {p50:.0f} ms, p99 {p99:.0f} ms ({len(health)} polls); "
        f"RSS {service.rss_mib():.0f} MiB"
    )


async def fleet_rate_limit(bench: Bench) -> str:
    _, url = bench.sandbox()
    redis = bench.redis()
    env = bench.env(
        url,
        GRAPH_API_KEYS=API_KEY,
        GRAPH_ALLOW_ANONYMOUS="false",
        GRAPH_CACHE_URL=redis.url,
        GRAPH_RATE_LIMIT_PER_MIN="60",
    )
    instances = await bench.services(3, env)
    statuses: Counter[int] = Counter()

    async def one(http: httpx.AsyncClient, i: int) -> None:
        answer = await http.post(f"{instances[i % 3].url}/graphql", json={"query": "{ __typename }"})
        statuses[answer.status_code] += 1

    async with httpx.AsyncClient(timeout=60, headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        await pool(300, 10, lambda i: one(http, i))
    return f"3 instances, limit 60/min: {statuses[200]} of 300 allowed, {statuses[429]} refused (429)"


async def fleet_cold_key(bench: Bench) -> str:
    gateway, url = bench.sandbox()
    redis = bench.redis()
    instances = await bench.services(3, bench.env(url, GRAPH_CACHE_URL=redis.url))
    keys = [(v, c) for v in VERSIONS for c in CLIENTS]
    gateway.fail_next(Fault.slow(0.4), times=len(keys) * 3)

    async def ask(http: httpx.AsyncClient, base: str, version: str, client: str) -> bool:
        answer = await http.post(f"{base}/graphql", json={"query": STATUS, "variables": {"v": version, "b": client}})
        return answer.status_code == 200 and "errors" not in answer.json()

    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=200)) as http:
        answered = await asyncio.gather(
            *(ask(http, one.url, v, c) for v, c in keys for one in instances for _ in range(5))
        )
    asked = Counter((c.app_version, c.bundle_id) for c in gateway.calls)
    twice = sum(1 for n in asked.values() if n > 1)
    return (
        f"3 instances, {len(keys)} cold keys, {len(answered)} requests ({sum(answered)} answered): "
        f"gateway calls {len(gateway.calls)}" + (f" ({twice} keys called more than once)" if twice else "")
    )


def forge(raw: bytes) -> bytes | None:
    """The stored text with the version's release fields replaced, in whatever envelope it came: whatever precedes
    the JSON (a seal such as ``g1.<tag>.``) is kept as it was, as an attacker without the key would keep it; None
    for what is not a stored gateway answer."""
    start = raw.find(b"{")
    if start < 0:
        return None
    try:
        value = orjson.loads(raw[start:])
    except orjson.JSONDecodeError:
        return None
    found = False

    def walk(node: Any) -> Any:
        nonlocal found
        if isinstance(node, dict):
            if "app_version" in node and ("can_release" in node or "status" in node):
                found = True
                return {**node, "can_release": "true", "gray_strategy": "p100"}  # grayPercentage 100
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str) and node[:1] in "{[":  # an answer kept as text inside the envelope
            inner = forge(node.encode())
            if inner is not None:
                found = True
                return inner.decode()
        return node

    forged = walk(value)
    return raw[:start] + orjson.dumps(forged) if found else None


async def forged_redis_entry(bench: Bench) -> str:
    gateway, url = bench.sandbox()
    redis = bench.redis()
    first, second = await bench.services(2, bench.env(url, GRAPH_CACHE_URL=redis.url))
    async with httpx.AsyncClient(timeout=30) as http:
        honest = (await http.post(f"{first.url}/graphql", json={"query": RELEASE_A})).json()
        client = Redis.from_url(redis.url)
        forged_keys = []
        stored = cast(list[bytes], client.keys("*"))
        for key in stored:
            if b"response:" in key or client.type(key) != b"string":
                continue  # the whole-response cache (not what this attack forges), buckets, leases
            raw = client.get(key)
            if not isinstance(raw, bytes):
                continue
            forged = forge(raw)
            if forged is not None:
                client.set(key, forged, keepttl=True)
                forged_keys.append(key.decode())
        client.close()
        calls = len(gateway.calls)
        served = (await http.post(f"{second.url}/graphql", json={"query": RELEASE_B})).json()
    version = (served.get("data") or {}).get("miniAppVersion") or {}
    took = version.get("canRelease") is True and version.get("grayPercentage") == 100
    if not forged_keys:
        return f"no gateway answer found in Redis to forge (keys: {stored!r})"
    return (
        f"forged {len(forged_keys)} entry; instance B served canRelease={version.get('canRelease')} "
        f"grayPercentage={version.get('grayPercentage')} (true answer: "
        f"{(honest.get('data') or {}).get('miniAppVersion')}): "
        f"{'FORGED VALUE SERVED' if took else 'forgery refused'}, gateway calls after the forgery "
        f"{len(gateway.calls) - calls}"
    )


async def gateway_down(bench: Bench) -> str:
    with contextlib.ExitStack() as gateway_life:
        _, url = bench.sandbox(gateway_life)
        [service] = await bench.services(1, bench.env(url, GRAPH_CACHE_TTL_S="1"))
        query = {"query": STATUS, "variables": {"v": "0.0.1", "b": CLIENTS[0]}}
        async with httpx.AsyncClient(base_url=service.url, timeout=60) as http:
            first = (await http.post("/graphql", json=query)).json()
            assert "errors" not in first, first
    await asyncio.sleep(2)  # the gateway is stopped: connections refused
    async with httpx.AsyncClient(base_url=service.url, timeout=60) as http:
        started = time.monotonic()
        answer = (await http.post("/graphql", json=query)).json()
        elapsed = time.monotonic() - started
    if answer.get("data") and answer["data"].get("miniAppVersion") and not answer.get("errors"):
        extensions = answer.get("extensions") or {}
        marks = {k: v for k, v in extensions.items() if k in ("stale", "cacheAge")}
        return f"answered with data {marks} in {elapsed:.2f} s"
    return f"error {error_codes(answer)} in {elapsed:.2f} s"


async def text_log_forging(bench: Bench) -> str:
    _, url = bench.sandbox()
    [service] = await bench.services(1, bench.env(url, GRAPH_LOG_FORMAT="text", GRAPH_LOG_LEVEL="INFO"))
    host, port = service.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    # Raw: a client library would refuse or re-encode the path.
    writer.write(b"GET /%0d%0aCRITICAL%20forged HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status = (await reader.read()).split(b"\r\n", 1)[0].decode()
    writer.close()
    for _ in range(100):  # the request line is written after the answer
        lines = service.log.read_text(errors="replace").splitlines()
        if any("forged" in line for line in lines):
            break
        await asyncio.sleep(0.05)
    forged = [line for line in lines if line.startswith("CRITICAL")]
    logged = [line for line in lines if "forged" in line]
    if forged:
        return f"FORGED LINE WRITTEN: {forged[0]!r} ({status})"
    if not logged:
        return f"nothing logged ({status})"
    path = logged[0][logged[0].find("path=") :].split(" status=", 1)[0]
    return f"no forged line; logged as {path!r} ({status})"


ATTACKS: dict[str, tuple[str, Callable[[Bench], Awaitable[str]]]] = {
    "1": ("no-cache flood", no_cache_flood),
    "2": ("quota drain", quota_drain),
    "3": ("wrong-key burst", wrong_key_burst),
    "4": ("fleet rate limit", fleet_rate_limit),
    "5": ("fleet cold key", fleet_cold_key),
    "6": ("forged Redis entry", forged_redis_entry),
    "7": ("gateway down", gateway_down),
    "8": ("text log forging", text_log_forging),
}


def describe(checkout: Path) -> str:
    commit = subprocess.run(
        ["git", "-C", str(checkout), "log", "-1", "--format=%h %s"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return f"{checkout} at {commit[:90] or 'an unknown commit'}"


async def run(checkout: Path, only: list[str]) -> None:
    report(f"service from {describe(checkout)}")
    with tempfile.TemporaryDirectory(prefix="attacks-") as work:
        for number in only:
            name, attack = ATTACKS[number]
            bench = Bench(checkout, Path(work))
            started = time.monotonic()
            with bench.stack:
                try:
                    figure = await attack(bench)
                except Exception as exc:  # one attack's failure is its figure; the others still run
                    figure = f"FAILED: {type(exc).__name__}: {exc}"[:300]
            report(f"{number} {name:<19} {figure}  [{time.monotonic() - started:.0f} s]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--checkout", type=Path, default=ROOT, help="the source tree to run the service from")
    parser.add_argument("--only", default=",".join(ATTACKS), help="comma-separated attack numbers (1-8)")
    args = parser.parse_args()
    only = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in only if n not in ATTACKS]
    if unknown:
        parser.error(f"no attack {', '.join(unknown)} (1-8)")
    asyncio.run(run(args.checkout.resolve(), only))


if __name__ == "__main__":
    main()
