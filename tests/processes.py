"""Real service processes for tests: ``python -m graph serve`` started, awaited, measured and stopped.

Used where one process is not enough to show a property: memory read from /proc, several instances sharing one
Redis (the fleet), worker processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from graph.sandbox import DemoCredentials

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Service:
    """``python -m graph serve`` in its own process; its output goes to a file (a pipe nobody reads would fill)."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.url = f"http://127.0.0.1:{_free_port()}"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("ALIPAY_", "GRAPH_", "PROMETHEUS_"))}
        self.log = log
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "graph", "serve", "--port", self.url.rsplit(":", 1)[1], *args],
                cwd=ROOT,
                env={**base, "GRAPH_RATE_LIMIT_PER_MIN": "0", "GRAPH_LOG_LEVEL": "WARNING", **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")  # pragma: no cover

    async def ready(self) -> None:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as http:
            while True:
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                assert self.process.poll() is None, self.log.read_text()
                assert time.monotonic() < deadline, "the service did not become ready"
                await asyncio.sleep(0.1)

    async def started(self, processes: int) -> None:
        """Until ``processes`` workers said they are ready (the first one up answers all until the next is); needs
        GRAPH_LOG_LEVEL=INFO."""
        deadline = time.monotonic() + 60
        while len(self.lines('"service ready"')) < processes:
            assert time.monotonic() < deadline, self.log.read_text()
            await asyncio.sleep(0.1)

    def lines(self, containing: str) -> list[dict[str, Any]]:
        """The JSON log lines holding ``containing``."""
        text = self.log.read_text()
        return [json.loads(line) for line in text.splitlines() if line.startswith("{") and containing in line]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: coverage saves the child's data
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:  # pragma: no cover
                self.process.kill()
                self.process.wait()


def gateway_env(demo_credentials: DemoCredentials, gateway_url: str) -> dict[str, str]:
    """The environment of a process that talks to the test's sandbox gateway with the session's keys."""
    return {
        "ALIPAY_APP_ID": demo_credentials.app_id,
        "ALIPAY_APP_PRIVATE_KEY": demo_credentials.app_private_key_pem,
        "ALIPAY_PUBLIC_KEY": demo_credentials.alipay_public_key_pem,
        "ALIPAY_GATEWAY_URL": gateway_url,
        "GRAPH_ALLOW_ANONYMOUS": "true",
    }
