"""The speed figures of issue 7, each printed beside a baseline measured in the same run.

    python benchmarks/speed.py [--duration 5]

Starts, as separate processes on loopback: the sandbox gateway, the service (one uvicorn worker, default
settings but an answer-cache bound large enough for P1b's warm-up), and a bare Starlette endpoint that returns
the same bytes as the service's cached answer. Loads them with wrk (a Python load generator where wrk is
absent), alternating service and baseline, and prints:

  P1a response-cache hit, 68-field selection with variables     >= 0.85 x bare Starlette
  P1b response-cache miss on cached data (new variables)        >= 0.10 x bare Starlette
  P2  5-client miniAppVersions at 300 ms gateway latency       <= 1.2 x one gateway call
  P3  100 concurrent identical cold queries                     1 gateway call
  P4  one RSA2 sign                                             >= 25 x faster than the official SDK
  P5  miss path, 32 concurrent, 50 ms gateway                   median - 50 ms <= 3 ms; calls/s per core
  P6  RSS after 100k distinct keys vs after 10k (default bound) within 10 %
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.processes import service_env, write_key_files  # noqa: E402
from benchmarks.sign_verify import CONTENT, median_ms  # noqa: E402
from graph.gateway import signing  # noqa: E402
from graph.gateway.client import AlipayClient  # noqa: E402
from graph.gateway.keys import load_private_key  # noqa: E402
from graph.sandbox import generate_credentials  # noqa: E402

FULL = """query Full($v: String!, $b: String!) {
  miniAppVersion(appVersion: $v, bundleId: $b) {
    appVersion bundleId appName appEnglishName appLogo versionDesc rejectReason appDesc appSlogan memo
    servicePhone serviceEmail grayStrategy grayPercentage status scanResult
    gmtCreate gmtApplyAudit gmtOnline gmtOffline gmtAuditEnd
    serviceRegionType serviceRegionInfo { provinceCode provinceName cityCode cityName areaCode areaName }
    screenShotList
    miniAppCategoryInfoList {
      firstCategoryId firstCategoryName secondCategoryId secondCategoryName thirdCategoryId thirdCategoryName
    }
    miniCategoryInfoList {
      firstCategoryId firstCategoryName secondCategoryId secondCategoryName thirdCategoryId thirdCategoryName
    }
    packageInfoList { packageName packageDesc docUrl status packageOpenType }
    baseAudit promoteAudit canRelease
    baseAuditRecord { auditImages memos { memo memoImageList } }
    promoteAuditRecord { auditImages memos { memo memoImageList } }
  }
}"""
WALLET = "com.alipay.alipaywallet"
SYNTHETIC = 8000  # versions 9.0 ... 9.7999: P1b's distinct variables, P5's distinct gateway keys


def report(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def process(args: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{args} did not start")
            time.sleep(0.05)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, body: str | None, script: str | None, duration: float, connections: int = 32) -> float:
    """Requests per second from wrk with one thread, or from the Python generator without wrk."""
    with tempfile.TemporaryDirectory() as tmp:
        lua = Path(tmp) / "load.lua"
        if script is not None:
            lua.write_text(script)
        else:
            lua.write_text(
                'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f"wrk.body = {json.dumps(body)}\n"
            )
        if shutil.which("wrk") is None:
            return asyncio.run(python_load(url, body or "", duration, connections))
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "-s", str(lua), url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if match is None or errors is not None:
        raise SystemExit(f"wrk run failed:\n{out}")
    return float(match.group(1))


async def python_load(url: str, body: str, duration: float, connections: int) -> float:
    done = 0
    deadline = time.monotonic() + duration
    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                response = await http.post(url, content=body, headers={"Content-Type": "application/json"})
                response.raise_for_status()
                done += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
    return done / duration


def p1b_script(count: int) -> str:
    # Each request asks a version the answer cache holds but no stored response does: a new variables value.
    query = json.dumps(json.dumps(FULL))  # a Lua string holding the JSON string
    template = '{"query":%s,"variables":{"v":"9.%d","b":"' + WALLET + '"}}'
    return f"""
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{template}', {query}, counter % {count})
  return wrk.format("POST", nil, {{["Content-Type"] = "application/json"}}, body)
end
"""


async def post(http: httpx.AsyncClient, query: str, variables: dict[str, str], **headers: str) -> httpx.Response:
    response = await http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    if response.status_code != 200 or "errors" in response.json():
        raise SystemExit(f"benchmark query failed: {response.text[:300]}")
    return response


async def warm(url: str, count: int) -> None:
    """Put versions 9.0 ... 9.count-1 in the answer cache through a different document (no stored response)."""
    small = "query Warm($v: String!, $b: String!) { miniAppVersion(appVersion: $v, bundleId: $b) { status } }"
    queue = iter(range(count))
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=32)) as http:

        async def worker() -> None:
            for i in queue:
                await post(http, small, {"v": f"9.{i}", "b": WALLET})

        await asyncio.gather(*(worker() for _ in range(32)))


async def fan_out(url: str, rounds: int) -> tuple[float, float]:
    one = 'query { miniAppVersion(appVersion: "0.0.1") { status } }'
    five = 'query { miniAppVersions(appVersion: "0.0.1") { ... on MiniAppVersion { status } } }'
    ones: list[float] = []
    fives: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for _ in range(rounds):
            for query, into in ((one, ones), (five, fives)):
                started = time.perf_counter()
                await post(http, query, {}, **{"Cache-Control": "no-cache"})
                into.append(time.perf_counter() - started)
    return statistics.median(ones), statistics.median(fives)


async def stampede(url: str, gateway_root: str, concurrent: int) -> int:
    """Gateway calls made by ``concurrent`` identical cold queries (read from the sandbox's call log)."""
    query = 'query { miniAppVersion(appVersion: "1.0.0", bundleId: "com.amap.app") { status } }'
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=concurrent)) as http:
        before = int((await http.get(f"{gateway_root}/_calls")).text)
        await asyncio.gather(*(post(http, query, {}) for _ in range(concurrent)))
        return int((await http.get(f"{gateway_root}/_calls")).text) - before


MISS_QUERY = "query M($v: String!, $b: String!) { miniAppVersion(appVersion: $v, bundleId: $b) { status } }"


def miss_script(offset: int) -> str:
    # Every request a distinct version and Cache-Control: no-cache: each one is a gateway call.
    template = '{"query":%s,"variables":{"v":"9.%d","b":"' + WALLET + '"}}'
    return f"""
counter = {offset}
request = function()
  counter = counter + 1
  local body = string.format('{template}', {json.dumps(json.dumps(MISS_QUERY))}, counter % {SYNTHETIC})
  return wrk.format("POST", nil, {{["Content-Type"] = "application/json", ["Cache-Control"] = "no-cache"}}, body)
end
"""


def miss_path(url: str, pid: int, duration: float, offset: int) -> tuple[float, float, float]:
    """wrk, 32 connections, every request a gateway call. Median ms, calls/s, calls per CPU-second of the
    service process (its share of one core: the per-core rate)."""
    with tempfile.TemporaryDirectory() as tmp:
        lua = Path(tmp) / "miss.lua"
        lua.write_text(miss_script(offset))
        cpu_before, started = cpu_seconds(pid), time.monotonic()
        out = subprocess.run(
            ["wrk", "-t1", "-c32", f"-d{max(1, round(duration))}s", "--latency", "-s", str(lua), url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        elapsed, cpu = time.monotonic() - started, cpu_seconds(pid) - cpu_before
    median = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)$", out, re.MULTILINE)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if median is None or rate is None or "Non-2xx" in out:
        raise SystemExit(f"wrk miss-path run failed:\n{out}")
    median_ms = float(median.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[median.group(2)]
    calls = float(rate.group(1))
    return median_ms, calls, calls * elapsed / max(cpu, 1e-9)


async def client_alone(client: AlipayClient, duration: float) -> tuple[float, float]:
    """32 concurrent calls of the client itself for ``duration``: median ms and calls/s."""
    latencies: list[float] = []
    counter = iter(range(10**9))
    deadline = time.monotonic() + duration

    async def worker() -> None:
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            await client.version_detail(f"9.{next(counter) % SYNTHETIC}", WALLET)
            latencies.append(time.perf_counter() - t0)

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(32)))
    return statistics.median(latencies) * 1000, len(latencies) / (time.monotonic() - started)


def rss_figures() -> tuple[float, float]:
    code = """
import asyncio, copy, gc, resource
from graph.data.cache import Entry, open_cache
from graph.config import Settings
from graph.sandbox import SEED_VERSIONS
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() / 2**20
async def main():
    node = dict(SEED_VERSIONS[("0.0.1", "com.alipay.alipaywallet")])
    defaults = Settings(credentials=None)
    cache = open_cache("memory://", max_bytes=defaults.cache_max_bytes, max_entries=defaults.cache_max_entries)
    out = {}
    for i in range(100_000):
        await cache.set(f"k:{i:064x}", Entry("ok", copy.deepcopy(node), 0.0), 60)
        if i % 100 == 0:
            await asyncio.sleep(0)
        if i + 1 in (10_000, 100_000):
            gc.collect()
            out[i + 1] = rss()
    print(out[10_000], out[100_000])
asyncio.run(main())
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    ten, hundred = (float(x) for x in out.split())
    return ten, hundred


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load run")
    args = parser.parse_args()

    demo = generate_credentials()
    tmp = write_key_files(demo, "speed-")
    app_private = demo.app_private_key_pem
    sandbox_port, service_port, bare_port = free_port(), free_port(), free_port()
    py = sys.executable
    env = service_env(
        tmp,
        demo.app_id,
        sandbox_port,
        GRAPH_CACHE_MAX_ENTRIES="50000",  # P1b warms 8,000 answers; the default bound is P6's subject
        GRAPH_CACHE_TTL_S="600",  # and they must outlive the warm-up on a busy machine
        GRAPH_MAX_CONCURRENCY="32",  # P5 keeps 32 gateway calls in flight; the default 16 would queue half
    )
    service = f"http://127.0.0.1:{service_port}"
    report(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; load: "
        f"{'wrk -t1 -c32' if shutil.which('wrk') else 'Python generator, 32 connections'}, {args.duration:.0f} s runs"
    )

    def sandbox(latency: float) -> list[str]:
        return [
            py,
            "-m",
            "benchmarks.processes",
            "sandbox",
            "--port",
            str(sandbox_port),
            "--keys",
            str(tmp),
            "--versions",
            str(SYNTHETIC),
            "--latency",
            str(latency),
        ]

    serve_cmd = [py, "-m", "graph", "serve", "--port", str(service_port)]
    url = f"{service}/graphql"
    # P1: no gateway latency (every answer comes from a cache anyway).
    with process(sandbox(0), sandbox_port), process(serve_cmd, service_port, env):
        body = json.dumps({"query": FULL, "variables": {"v": "0.0.1", "b": WALLET}})
        for _ in range(2):
            cached = httpx.post(url, content=body, headers={"Content-Type": "application/json"})
        assert cached.headers.get("x-response-cache") == "hit", "the response cache did not answer"
        (tmp / "body.json").write_bytes(cached.content)
        bare_cmd = [
            py,
            "-m",
            "benchmarks.processes",
            "bare",
            "--port",
            str(bare_port),
            "--body",
            str(tmp / "body.json"),
        ]
        with process(bare_cmd, bare_port):
            bare_url = f"http://127.0.0.1:{bare_port}/graphql"
            wrk(bare_url, body, None, 1)
            wrk(url, body, None, 1)  # warm-up
            bare_runs, hit_runs = [], []
            for _ in range(2):  # alternate, so drift on a shared machine hits both alike
                bare_runs.append(wrk(bare_url, body, None, args.duration))
                hit_runs.append(wrk(url, body, None, args.duration))
            asyncio.run(warm(service, SYNTHETIC))
            miss = wrk(url, None, p1b_script(SYNTHETIC), min(args.duration, 4))
            bare_runs.append(wrk(bare_url, body, None, args.duration))
    bare, hit = statistics.median(bare_runs), statistics.median(hit_runs)

    # P5: a 50 ms gateway.
    with process(sandbox(0.05), sandbox_port), process(serve_cmd, service_port, env) as service_proc:
        miss_path(url, service_proc.pid, 1, 0)  # warm-up: connections, parser cache
        median_ms_, calls_s, calls_cpu = miss_path(url, service_proc.pid, args.duration, 1000)

    # P2 and P3: a 300 ms gateway.
    with process(sandbox(0.3), sandbox_port), process(serve_cmd, service_port, env):
        one, five = asyncio.run(fan_out(service, 7))
        calls = asyncio.run(stampede(service, f"http://127.0.0.1:{sandbox_port}", 100))

    key = load_private_key(app_private, "bench")
    ours = median_ms(lambda: signing.sign(CONTENT.encode(), key, signing.SignType.RSA2), 300)
    from alipay.aop.api.util.SignatureUtils import sign_with_rsa2

    pkcs1 = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    body_b64 = "".join(line for line in pkcs1.splitlines() if not line.startswith("-----"))
    sdk = median_ms(lambda: sign_with_rsa2(body_b64, CONTENT, "utf-8"), 30)
    rss_10k, rss_100k = rss_figures()
    shutil.rmtree(tmp)

    report()
    report(f"{'figure':64}{'value':>12}{'baseline':>12}{'ratio':>8}  target")
    rows = [
        ("P1a response-cache hit, 68 fields + variables (req/s)", hit, bare, hit / bare, ">= 0.85"),
        ("P1b response-cache miss, data cached (req/s)", miss, bare, miss / bare, ">= 0.10"),
        ("P2  5-client miniAppVersions vs one call, 300 ms (ms)", five * 1000, one * 1000, five / one, "<= 1.2"),
        ("P3  gateway calls for 100 concurrent identical cold queries", calls, 1, calls / 1, "1"),
        ("P4  RSA2 sign, ours vs official SDK (ms)", ours, sdk, sdk / ours, ">= 25 (x faster)"),
        (
            "P5  miss path median, 32 concurrent, 50 ms gateway (ms)",
            median_ms_,
            50.0,
            median_ms_ - 50.0,
            "<= 3 ms over",
        ),
        ("P5  miss path gateway calls per second (per core: per CPU-s)", calls_s, calls_cpu, calls_s / calls_cpu, ""),
        ("P6  RSS after 100k distinct keys vs after 10k (MiB)", rss_100k, rss_10k, rss_100k / rss_10k, "<= 1.10"),
    ]
    for name, value, base, ratio, target in rows:
        report(f"{name:64}{value:12.2f}{base:12.2f}{ratio:8.2f}  {target}")


if __name__ == "__main__":
    main()
