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
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from graph import __version__, logs
from graph.bodylimit import BodyLimit
from graph.config import ConfigError, Settings
from graph.endpoint import GraphQLEndpoint
from graph.guard import Guard
from graph.ide.page import BUILD_COMMAND, STATIC_DIR, STATIC_PATH, assets_built, render_page
from graph.metrics import CONTENT_TYPE, Metrics
from graph.persisted import PersistedQueries
from graph.ratelimit import RateLimit
from graph.response_cache import ResponseCache
from graph.schema import create_schema
from graph.services import Services, build_services
from graph.telemetry import RequestTelemetry, Telemetry
from graph.tracing import Tracing

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

log = logging.getLogger("graph.app")


def create_app(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    ide_static_dir: Path = STATIC_DIR,
    tracer_provider: TracerProvider | None = None,
) -> Starlette:
    """Build the service. ``transport`` replaces the network under the gateway client (tests);
    ``ide_static_dir`` is where GraphiQL's assets were built (``python -m graph build-ide``);
    ``tracer_provider`` replaces the process's OpenTelemetry provider (tests, embedding)."""
    telemetry = Telemetry(
        Metrics(settings.metrics_operations),
        Tracing(tracer_provider, record_query_text=settings.trace_query_text),
    )
    page = render_page() if settings.graphiql and assets_built(ide_static_dir) else None
    schema = create_schema(
        introspection=settings.introspection,
        batch_operations=settings.max_batch_operations if settings.allow_batching else None,
    )
    graphql = GraphQLEndpoint(
        schema,
        graphql_ide="graphiql" if settings.graphiql else None,
        allow_queries_via_get=True,
        page=page,
    )
    routes: list[BaseRoute] = [
        Route("/graphql", graphql),  # every method: the endpoint answers the others with a JSON 405
        Route("/healthz", _healthz, methods=["GET"]),
        Route("/readyz", _readyz, methods=["GET"]),
        Route("/metrics", _metrics, methods=["GET"]),
    ]
    if page is not None:
        # Public like the page (nothing secret in GraphiQL's code); StaticFiles serves only files inside the folder.
        routes.append(Mount(STATIC_PATH, StaticFiles(directory=ide_static_dir), name="graphiql-static"))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = build_services(settings, transport=transport, telemetry=telemetry)
        # Everything built so far (modules, the schema, keys) lives as long as the process: moved out of the
        # collector's generations, full collections on the request path stop re-walking it.
        gc.freeze()
        app.state.services = services
        if settings.closed:
            log.warning("every /graphql request will be refused: set GRAPH_API_KEYS or GRAPH_ALLOW_ANONYMOUS=true")
        if settings.graphiql and page is None:
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
            log.info("service stopped", extra={"pid": os.getpid()})
            # uvicorn re-raises the signal it caught once we return, and a process ended by a signal runs no
            # atexit handlers: write what the batching log handler still holds now.
            logs.flush()

    app = Starlette(
        routes=routes,
        middleware=[
            # Outermost: every request, refused ones included, gets an id, a span, a count and a log line.
            Middleware(RequestTelemetry, telemetry=telemetry),
            # Then, each a small pure-ASGI module: who may call, how often, how much they may send (read here,
            # bounded, before anything else reads it), persisted queries, and the whole-response cache.
            Middleware(Guard, api_keys=settings.api_keys, allow_anonymous=settings.allow_anonymous),
            Middleware(RateLimit, per_minute=settings.rate_limit_per_min),
            Middleware(BodyLimit, max_bytes=settings.max_body_bytes),
            # Before the response cache: a persisted query reaches it as the plain operation it stands for.
            Middleware(
                PersistedQueries,
                mode=settings.persisted_queries,
                manifest=settings.operations,
                ttl_s=settings.apq_ttl_s,
            ),
            Middleware(ResponseCache, default_ttl_s=settings.cache_ttl_s),
        ],
        lifespan=lifespan,
    )
    app.state.schema = schema  # the fast path in graph.response_cache executes on it directly
    app.state.telemetry = telemetry
    return app


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _readyz(request: Request) -> Response:
    services: Services = request.app.state.services
    checks = {
        "keys": "ok" if services.client.keys_usable() else "unusable",
        "cache": "ok" if await services.cache.ping() else f"{services.cache.name} unavailable",
    }
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )


async def _metrics(request: Request) -> Response:
    # No API key: scrapers rarely carry one, and nothing here is secret (labels are bounded and anonymous).
    telemetry: Telemetry = request.app.state.telemetry
    return Response(telemetry.metrics.exposition(), media_type=CONTENT_TYPE)


def from_environ() -> Starlette:
    """Zero-argument factory for ``uvicorn --factory graph.app:from_environ``; each worker calls it."""
    return _from_environ(demo=False)


def demo_from_environ() -> Starlette:
    """The same for ``serve --demo``: every worker gets its own embedded sandbox and throw-away keys."""
    return _from_environ(demo=True)


def _from_environ(*, demo: bool) -> Starlette:
    try:
        settings = Settings.from_environ(demo=demo)
    except ConfigError as exc:
        # One line naming the variable, not a traceback: what an operator reads in `docker logs`.
        print(f"alipay-graph: {exc}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None
    logs.configure(settings.log_format, settings.log_level, batched=True)
    return create_app(settings)
