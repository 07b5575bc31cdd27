"""The ASGI application: /graphql, /healthz, /readyz, /metrics, with the gateway client owned by the lifespan.

``GET /graphql`` from a browser serves the GraphiQL playground; its assets are under ``/graphiql/static/``.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from graph import __version__
from graph.config import ConfigError, Settings
from graph.execution.schema import create_schema
from graph.http.edge import GraphQLEdge
from graph.http.live import LiveOperations
from graph.http.live_sse import SseEndpoint
from graph.http.live_ws import WebSocketEndpoint
from graph.ide.page import BUILD_COMMAND, STATIC_DIR, STATIC_PATH, Page, assets_built, cdn_page, render_page
from graph.observability import logs
from graph.observability.metrics import CONTENT_TYPE, Metrics
from graph.observability.telemetry import RequestTelemetry, Telemetry
from graph.observability.tracing import Tracing
from graph.services import Services, build_services

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

log = logging.getLogger("graph.app")
GRAPHQL_PATH = "/graphql"


class Service:
    """The ASGI application. ``/graphql`` goes straight to the edge (a WebSocket there to the live endpoint),
    everything else (health, metrics, the playground's assets, the lifespan) to Starlette; the request telemetry is
    the one layer around the HTTP requests."""

    def __init__(
        self, starlette: Starlette, edge: GraphQLEdge, telemetry: Telemetry, websocket: WebSocketEndpoint
    ) -> None:
        self.starlette = starlette
        self.edge = edge
        self.telemetry = telemetry
        self.websocket = websocket
        self._graphql = RequestTelemetry(edge, telemetry=telemetry)
        self._other = RequestTelemetry(starlette, telemetry=telemetry)
        self.services: Services | None = None  # while the lifespan runs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == GRAPHQL_PATH:
            await self._graphql(scope, receive, send)
        elif scope["type"] == "websocket" and scope["path"] == GRAPHQL_PATH:
            await self.websocket(scope, receive, send)
        else:
            await self._other(scope, receive, send)


def create_app(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    ide_static_dir: Path = STATIC_DIR,
    tracer_provider: TracerProvider | None = None,
) -> Service:
    """Build the service. ``transport`` replaces the network under the gateway client (tests);
    ``ide_static_dir`` is where GraphiQL's assets were built (``python -m graph build-ide``);
    ``tracer_provider`` replaces the process's OpenTelemetry provider (tests, embedding)."""
    telemetry = Telemetry(
        Metrics(settings.metrics_operations),
        Tracing(tracer_provider, record_query_text=settings.trace_query_text),
    )
    built = assets_built(ide_static_dir)
    page: Page | None = None
    if settings.graphiql:
        page = render_page() if built else cdn_page()
    schema = create_schema(
        introspection=settings.introspection,
        batch_operations=settings.max_batch_operations if settings.allow_batching else None,
    )
    edge = GraphQLEdge(schema, settings, telemetry, page=page)
    live = LiveOperations(schema, settings, edge.access)
    edge.live = SseEndpoint(live)
    service: Service

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        services = service.services
        if services is None:  # pragma: no cover  (routes answer only while the lifespan runs)
            return JSONResponse({"status": "not ready", "checks": {}}, status_code=503)
        checks = {
            "keys": "ok" if services.client.keys_usable() else "unusable",
            "cache": "ok" if await services.cache.ping() else f"{services.cache.name} unavailable",
        }
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
        )

    async def metrics(request: Request) -> Response:
        # No API key: scrapers rarely carry one, and nothing here is secret (labels are bounded and anonymous).
        return Response(telemetry.metrics.exposition(), media_type=CONTENT_TYPE)

    routes: list[BaseRoute] = [
        # Reached only through a path Service does not short-cut (a root path in front, say): the same edge.
        Route(GRAPHQL_PATH, edge, methods=None),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    if settings.graphiql and built:
        # Public like the page (nothing secret in GraphiQL's code); StaticFiles serves only files inside the folder.
        routes.append(Mount(STATIC_PATH, StaticFiles(directory=ide_static_dir), name="graphiql-static"))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = open_services(settings, transport=transport, telemetry=telemetry)
        # Everything built so far (modules, the schema, keys) lives as long as the process: moved out of the
        # collector's generations, full collections on the request path stop re-walking it.
        gc.freeze()
        service.services = services
        edge.start(services)
        live.start(services, edge.persisted, edge.access)
        if settings.closed:
            log.warning("every /graphql request will be refused: set GRAPH_API_KEYS or GRAPH_ALLOW_ANONYMOUS=true")
        if settings.graphiql and not built:
            log.warning(
                "GraphiQL assets are not built: the playground loads its scripts from a CDN and stays on "
                "'Loading...' without internet; build them with `%s`",
                BUILD_COMMAND,
            )
        # The one start-up summary line: what an operator checks first, nothing secret in it.
        summary = settings.summary()
        summary["app_id"] = services.client.app_id
        log.info("service ready", extra={"version": __version__, "pid": os.getpid(), **summary})
        try:
            yield
        finally:
            # uvicorn gets here after the requests in flight finished (or the grace period ran out).
            await services.aclose()
            service.services = None
            log.info("service stopped", extra={"pid": os.getpid()})
            # uvicorn re-raises the signal it caught once we return, and a process ended by a signal runs no
            # atexit handlers: write what the batching log handler still holds now.
            logs.flush()

    starlette = Starlette(routes=routes, lifespan=lifespan)
    # Starlette answers `/graphql/` with a redirect to an absolute URL built from the Host header (its
    # redirect_slashes): a caller-chosen Location. A path with a trailing slash is a 404 instead.
    starlette.router.redirect_slashes = False
    service = Service(starlette, edge, telemetry, WebSocketEndpoint(live))
    return service


def open_services(
    settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None, telemetry: Telemetry | None = None
) -> Services:
    """The process's services; under ``--demo`` against a fresh in-process sandbox (the one place that wires it)."""
    demo = None
    if settings.demo:
        from graph.sandbox.demo import start_demo  # the sandbox and its key generation load only for --demo

        demo = start_demo(settings.protocol)
    return build_services(settings, transport=transport, telemetry=telemetry, demo=demo)


def from_environ() -> Service:
    """Zero-argument factory for ``uvicorn --factory graph.app:from_environ``; each worker calls it."""
    return _from_environ(demo=False)


def demo_from_environ() -> Service:
    """The same for ``serve --demo``: every worker gets its own embedded sandbox and throw-away keys."""
    return _from_environ(demo=True)


def _from_environ(*, demo: bool) -> Service:
    try:
        settings = Settings.from_environ(demo=demo)
    except ConfigError as exc:
        # One line naming the variable, not a traceback: what an operator reads in `docker logs`.
        print(f"alipay-graph: {exc}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None
    logs.configure(settings.log_format, settings.log_level, batched=True)
    from graph.http import server  # uvicorn's protocol classes: loaded only where uvicorn serves the app

    server.configure(settings)  # this worker's read deadline and connection cap, before its first connection
    return create_app(settings)
