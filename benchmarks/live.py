"""Memory of idle live subscriptions: the service's RSS before and after 1,000 subscriptions that wait for changes.

    python benchmarks/live.py [--subscriptions 1000] [--per-connection 20]

Each run starts ``python -m graph serve --demo`` in a process of its own (polls every hour: the subscriptions stay
idle), warms it with one subscription (lazy imports, the first watch), reads its RSS from /proc, opens the
subscriptions over graphql-transport-ws (spread over 25 keys: 5 versions x 5 clients), waits until each has its
first state, and reads the RSS again. Two shapes: many subscriptions on few connections (a dashboard's tabs), and
one connection per subscription (what costs most).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.live_client import SUBSCRIPTION, WsClient

VERSIONS = ("0.0.1", "0.0.2", "0.1.0", "1.0.0", "1.1.0-beta")
from resolvers.arguments import KNOWN_BUNDLE_IDS as CLIENTS  # noqa: E402


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def _ready(url: str) -> None:
    async with httpx.AsyncClient(timeout=2) as http:
        for _ in range(300):
            try:
                if (await http.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the service did not start")


async def measure(subscriptions: int, per_connection: int) -> tuple[int, int]:
    """(RSS before, RSS after) in KiB, for ``subscriptions`` idle ones, ``per_connection`` on each WebSocket."""
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ALIPAY_", "GRAPH_"))},
        "GRAPH_LIVE_POLL_S": "3600",
        "GRAPH_LIVE_MAX_PER_KEY": str(subscriptions + 10),
        "GRAPH_LIVE_MAX_PER_CONNECTION": str(max(per_connection, 1)),
        "GRAPH_LIVE_MAX_CONNECTIONS_PER_KEY": str(subscriptions + 10),
        "GRAPH_MAX_CONNECTIONS": str(subscriptions + 100),
        "GRAPH_RATE_LIMIT_PER_MIN": "0",
        "GRAPH_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "graph", "serve", "--demo", "--port", str(port)]
    # Started once per run, before anything is measured: blocking the loop here costs nothing.
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: ASYNC220
    url = f"http://127.0.0.1:{port}"
    clients: list[WsClient] = []
    try:
        await _ready(url)
        warm = await (await WsClient.open(url)).acked()
        await warm.subscribe("warm", {"appVersion": "0.0.1", "bundleIds": [CLIENTS[0]]})
        await warm.item()
        await asyncio.sleep(0.5)
        before = rss_kib(server.pid)
        opened = 0
        while opened < subscriptions:
            client = await (await WsClient.open(url)).acked()
            clients.append(client)
            batch = min(per_connection, subscriptions - opened)
            for n in range(batch):
                key = opened + n
                variables = {"appVersion": VERSIONS[key % 5], "bundleIds": [CLIENTS[(key // 5) % 5]]}
                await client.subscribe(f"s{n}", variables, SUBSCRIPTION)
            for _ in range(batch):
                await client.item(within=30)
            opened += batch
        await asyncio.sleep(1.0)
        after = rss_kib(server.pid)
        return before, after
    finally:
        for client in clients:
            await client.aclose()
        server.terminate()
        server.wait(timeout=30)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscriptions", type=int, default=1000)
    parser.add_argument("--per-connection", type=int, default=20)
    args = parser.parse_args()
    for per_connection in (args.per_connection, 1):
        started = time.monotonic()
        before, after = await measure(args.subscriptions, per_connection)
        connections = -(-args.subscriptions // per_connection)
        per = (after - before) / args.subscriptions
        thousand = (after - before) / 1024 * 1000 / args.subscriptions
        print(  # noqa: T201
            f"{args.subscriptions} idle subscriptions on {connections} WebSockets ({per_connection} each): "
            f"RSS {before / 1024:.1f} MiB -> {after / 1024:.1f} MiB, {per:.1f} KiB per subscription "
            f"({thousand:.1f} MiB per 1,000) [{time.monotonic() - started:.0f} s]"
        )


if __name__ == "__main__":
    asyncio.run(main())
