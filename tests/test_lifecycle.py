"""Start, readiness and stop, as an orchestrator sees them: real processes, real signals, real sockets.

Readiness flipping while Redis is down and back is tests/test_aggregation.py::test_redis_down_and_back.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from graph.app import create_app
from graph.config import Settings
from graph.gateway.client import Credentials
from graph.sandbox import DemoCredentials, SandboxGateway
from tests.redis_server import RedisServer
from tests.servers import serve

ROOT = Path(__file__).resolve().parent.parent
STATUS = {"query": '{ miniAppVersion(appVersion: "0.0.1") { appVersion status } }'}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Served:
    """``python -m graph serve`` in its own process, as a container runs it."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("ALIPAY_", "GRAPH_"))}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "graph", "serve", "--port", str(self.port), *args],
            cwd=ROOT,
            env={**base, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stderr = ""
        self.signalled = False
        self.stopped = False

    def terminate(self) -> None:
        """SIGTERM, once: a second one would force an exit (uvicorn) or race coverage's own exit handler."""
        if not self.signalled:
            self.signalled = True
            self.process.send_signal(signal.SIGTERM)

    async def ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as http:
            while True:
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                assert self.process.poll() is None, self.process.communicate()[1]
                assert time.monotonic() < deadline, "the service did not become ready"
                await asyncio.sleep(0.1)

    def stop(self, timeout_s: float = 30, *, kill: bool = False) -> int:
        """Stop (SIGTERM unless already sent; SIGKILL to clean up) and wait for the exit status."""
        if not self.stopped:
            self.stopped = True
            if kill and self.process.poll() is None:
                self.process.kill()
            self.terminate()
            _, self.stderr = self.process.communicate(timeout=timeout_s)
        return self.process.returncode

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stderr.splitlines() if line.startswith("{")]


@pytest.fixture
def real_env(demo_credentials: DemoCredentials, gateway_url: str) -> dict[str, str]:
    """Keys and the test's sandbox gateway, as environment variables."""
    return {
        "ALIPAY_APP_ID": demo_credentials.app_id,
        "ALIPAY_APP_PRIVATE_KEY": demo_credentials.app_private_key_pem,
        "ALIPAY_PUBLIC_KEY": demo_credentials.alipay_public_key_pem,
        "ALIPAY_GATEWAY_URL": gateway_url,
        "GRAPH_ALLOW_ANONYMOUS": "true",
    }


@pytest.fixture
def started() -> Iterator[list[Served]]:
    processes: list[Served] = []
    yield processes
    for served in processes:  # a test that failed half-way leaves its process behind
        served.stop(kill=True)


async def _wait_for(condition: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_sigterm_lets_a_slow_request_finish(
    real_env: dict[str, str], sandbox: SandboxGateway, started: list[Served]
) -> None:
    served = Served(env=real_env | {"GRAPH_SHUTDOWN_GRACE_S": "10"})
    started.append(served)
    await served.ready()
    sandbox.latency_s = 1.5
    async with httpx.AsyncClient(base_url=served.url, timeout=20) as http:
        request = asyncio.create_task(http.post("/graphql", json=STATUS))
        await _wait_for(lambda: sandbox.in_flight == 1)  # the gateway call is under way
        served.terminate()
        response = await request
    assert response.status_code == 200
    assert response.json()["data"]["miniAppVersion"]["appVersion"] == "0.0.1"
    assert served.stop() in {0, -signal.SIGTERM}
    messages = [line["message"] for line in served.lines()]
    # In order: the request finished and was logged, then the pool and cache were closed.
    assert messages.index("request") < messages.index("service stopped")
    assert "Application shutdown complete." in served.stderr


async def test_the_grace_period_bounds_a_stop(
    real_env: dict[str, str], sandbox: SandboxGateway, started: list[Served]
) -> None:
    served = Served(env=real_env | {"GRAPH_SHUTDOWN_GRACE_S": "1"})
    started.append(served)
    await served.ready()
    sandbox.latency_s = 3.0
    async with httpx.AsyncClient(base_url=served.url, timeout=20) as http:
        request = asyncio.create_task(http.post("/graphql", json=STATUS))
        await _wait_for(lambda: sandbox.in_flight == 1)
        stopping = time.monotonic()
        served.terminate()
        response = await request
    assert response.status_code == 500  # cut off when the grace period ran out (uvicorn's own answer)
    assert served.stop() in {0, -signal.SIGTERM}, served.stderr
    assert time.monotonic() - stopping < 2.5  # before the gateway would have answered
    assert "timeout graceful shutdown exceeded" in served.stderr
    assert "service stopped" in served.stderr  # the pool and the cache were still closed
    # The sandbox still answers the abandoned call; let it finish so it lands in no other test's call log.
    await _wait_for(lambda: sandbox.in_flight == 0)
    await asyncio.sleep(0.05)


async def test_workers_each_build_the_app(started: list[Served]) -> None:
    served = Served("--demo", "--workers", "2", env={"GRAPH_LOG_FORMAT": "json"})
    started.append(served)
    await served.ready()
    for _ in range(4):  # a new connection each time: either worker may answer
        async with httpx.AsyncClient(base_url=served.url, timeout=20) as http:
            body = (await http.post("/graphql", json=STATUS)).json()
        assert body["data"]["miniAppVersion"]["appVersion"] == "0.0.1"
    assert served.stop() in {0, -signal.SIGTERM}
    lines = served.lines()
    ready = [line for line in lines if line["message"] == "service ready"]
    assert len({line["pid"] for line in ready}) == 2
    summary = ready[0]
    assert (summary["gateway"], summary["cache"], summary["auth"]) == ("in-process sandbox", "memory", "anonymous")
    assert summary["app_id"].isdigit()
    assert len([line for line in lines if line["message"] == "service stopped"]) == 2


def test_workers_must_be_a_sane_number() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "graph", "serve", "--demo", "--workers", "0"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == "alipay-graph: --workers: expected a whole number from 1 to 64\n"


def _connected_clients(server: RedisServer) -> int:
    with socket.create_connection(("127.0.0.1", server.port), timeout=1) as conn:
        conn.sendall(b"INFO clients\r\n")
        reply = conn.recv(65536).decode()
    [line] = [line for line in reply.splitlines() if line.startswith("connected_clients:")]
    return int(line.split(":")[1]) - 1  # not counting this connection


async def test_shutdown_closes_the_gateway_pool_and_redis(
    settings: Settings, sandbox: SandboxGateway, redis_server: RedisServer
) -> None:
    app = create_app(replace(settings, cache_url=redis_server.url))
    with serve(app, lifespan="on") as url:
        async with httpx.AsyncClient(base_url=url, timeout=20) as http:
            assert "errors" not in (await http.post("/graphql", json=STATUS)).json()
        services = app.services
        assert services is not None
        assert not services.client.closed
        assert _connected_clients(redis_server) >= 1
    assert services.client.closed
    assert _connected_clients(redis_server) == 0


def _unusable_credentials(credentials: Credentials) -> Credentials:
    # A key that loads but cannot sign an RSA2 digest: a 216-bit modulus (two Mersenne primes).
    p, q, e = 2**127 - 1, 2**89 - 1, 65537
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q), rsa.RSAPublicNumbers(e, p * q)
    )
    return replace(credentials, private_key=numbers.private_key())


async def test_readiness_fails_while_the_keys_cannot_sign(
    start_app: Callable[..., str], credentials: Credentials
) -> None:
    url = start_app(credentials=_unusable_credentials(credentials))
    async with httpx.AsyncClient(base_url=url) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"status": "not ready", "checks": {"keys": "unusable", "cache": "ok"}}
        assert (await http.get("/healthz")).status_code == 200  # alive: restarting would not mend a key
