"""Servers for the benchmarks, each in a process of its own so that each gets a core's worth of scheduling.

    python -m benchmarks.processes sandbox --port P --keys DIR [--latency S] [--versions N] [--loop L --http H]
    python -m benchmarks.processes bare --port P --body FILE [--loop L --http H]
    python -m benchmarks.processes service --port P [--loop L --http H]

``sandbox`` is the sandbox gateway with ``N`` synthetic versions ``9.0`` ... ``9.N-1`` besides the seed;
``bare`` is the baseline: a bare Starlette endpoint that answers every POST /graphql with the same bytes, with
uvicorn's access log on (one line per request to stdout, as uvicorn's default logging config has it);
``service`` is ``python -m graph serve --port P`` itself (``graph.cli.main``), with ``loop`` and ``http`` passed
to its ``uvicorn.run``. ``--loop``/``--http`` default to ``uvloop``/``httptools``; ``auto`` is uvicorn's choice
(the same two when they are installed). Each writes one line to stderr once it serves, with the event loop and
the HTTP protocol class it actually runs: ``benchmark-runtime: loop=... http=...``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from graph.sandbox import SEED_VERSIONS, DemoCredentials, SandboxGateway

SYNTHETIC_BASE = ("0.0.1", "com.alipay.alipaywallet")
RUNTIME_TAG = "benchmark-runtime:"


def synthetic_versions(count: int) -> dict[tuple[str, str], Any]:
    record = SEED_VERSIONS[SYNTHETIC_BASE]
    versions: dict[tuple[str, str], Any] = dict(SEED_VERSIONS)
    for i in range(count):
        versions[(f"9.{i}", SYNTHETIC_BASE[1])] = {**record, "app_version": f"9.{i}"}
    return versions


def write_key_files(demo: DemoCredentials, prefix: str) -> Path:
    """A temporary folder with both sides' keys as files: the service reads the app's, ``sandbox`` Alipay's."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    (tmp / "app_private.pem").write_text(demo.app_private_key_pem)
    (tmp / "alipay_public.pem").write_text(demo.alipay_public_key_pem)
    (tmp / "app_id").write_text(demo.app_id)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    (tmp / "app_public.pem").write_bytes(demo.app_public_key.public_bytes(serialization.Encoding.PEM, spki))
    pkcs8 = serialization.PrivateFormat.PKCS8
    (tmp / "alipay_private.pem").write_bytes(
        demo.alipay_private_key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption())
    )
    return tmp


def service_env(keys: Path, app_id: str, sandbox_port: int, **settings: str) -> dict[str, str]:
    """The environment of a benchmarked ``python -m graph serve``: this checkout, the keys in ``keys``, the
    sandbox on ``sandbox_port``, anonymous callers without a rate limit (the load generator is one caller doing
    thousands a second), plus ``settings``; nothing inherited from the caller's ALIPAY_*/GRAPH_* variables."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ALIPAY_", "GRAPH_"))},
        "ALIPAY_APP_ID": app_id,
        "ALIPAY_APP_PRIVATE_KEY_FILE": str(keys / "app_private.pem"),
        "ALIPAY_PUBLIC_KEY_FILE": str(keys / "alipay_public.pem"),
        "ALIPAY_GATEWAY_URL": f"http://127.0.0.1:{sandbox_port}/gateway.do",
        "GRAPH_ALLOW_ANONYMOUS": "true",
        "GRAPH_RATE_LIMIT_PER_MIN": "0",
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        **settings,
    }


def sandbox_app(keys: Path, latency_s: float, versions: int) -> Starlette:
    alipay_key = serialization.load_pem_private_key((keys / "alipay_private.pem").read_bytes(), password=None)
    app_public = serialization.load_pem_public_key((keys / "app_public.pem").read_bytes())
    assert isinstance(alipay_key, rsa.RSAPrivateKey)
    assert isinstance(app_public, rsa.RSAPublicKey)
    app_id = (keys / "app_id").read_text().strip()
    gateway = SandboxGateway(
        alipay_private_key=alipay_key, apps={app_id: app_public}, versions=synthetic_versions(versions)
    )
    gateway.latency_s = latency_s

    async def calls(request: Request) -> Response:  # the call log's length, for a benchmark in another process
        return Response(str(len(gateway.calls)), media_type="text/plain")

    return Starlette(routes=[Route("/_calls", calls), Mount("/", gateway.app)])


def bare_app(body: bytes) -> Starlette:
    async def graphql(request: Request) -> Response:
        await request.body()
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route("/graphql", graphql, methods=["POST"])])


def announce_runtime() -> None:
    """Have every uvicorn server of this process write, once it listens, the loop and HTTP protocol it runs."""
    startup = uvicorn.Server.startup

    async def startup_then_announce(self: uvicorn.Server, sockets: list[socket.socket] | None = None) -> None:
        await startup(self, sockets)
        loop, http = type(asyncio.get_running_loop()), self.config.http_protocol_class
        sys.stderr.write(
            f"{RUNTIME_TAG} pid={os.getpid()} loop={loop.__module__}.{loop.__qualname__} "
            f"http={http.__module__}.{http.__qualname__}\n"
        )
        sys.stderr.flush()

    uvicorn.Server.startup = startup_then_announce  # type: ignore[method-assign]


def serve_service(port: int, loop: str, http: str) -> int:
    """``python -m graph serve --port PORT`` as graph.cli runs it, its uvicorn.run given ``loop`` and ``http``."""
    from graph import cli

    run = uvicorn.run

    def run_with(app: Any, **options: Any) -> None:
        run(app, **{**options, "loop": loop, "http": http})

    uvicorn.run = run_with
    return cli.main(["serve", "--host", "127.0.0.1", "--port", str(port)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["sandbox", "bare", "service"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--keys", type=Path)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--versions", type=int, default=0)
    parser.add_argument("--body", type=Path)
    parser.add_argument("--loop", default="uvloop", help="uvicorn's --loop (auto: uvloop where installed)")
    parser.add_argument("--http", default="httptools", help="uvicorn's --http (auto: httptools where installed)")
    args = parser.parse_args()
    announce_runtime()
    if args.kind == "service":
        sys.exit(serve_service(args.port, args.loop, args.http))
    where = {"host": "127.0.0.1", "port": args.port, "loop": args.loop, "http": args.http}
    if args.kind == "sandbox":
        app = sandbox_app(args.keys, args.latency, args.versions)
        uvicorn.run(app, **where, log_level="warning", access_log=False)
    else:
        # The baseline pays for an access log line per request, as the service does for its own line: uvicorn's
        # default logging config, uvicorn.access at INFO to stdout (the caller sends it to a file).
        uvicorn.run(bare_app(args.body.read_bytes()), **where, log_level="info", access_log=True)


if __name__ == "__main__":
    main()
