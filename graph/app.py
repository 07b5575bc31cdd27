"""The ASGI application: /graphql, /healthz, /readyz, /metrics, with the gateway client owned by the lifespan."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from graph import __version__
from graph.config import ConfigError, Settings
from graph.context import Context, build_context
from graph.guard import TOKEN_HEADER, Guard
from graph.metrics import CONTENT_TYPE, Metrics
from graph.schema import create_schema
from graph.services import Services, build_services
from graph.telemetry import RequestTelemetry, Telemetry
from graph.tracing import Tracing

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

log = logging.getLogger("graph.app")


class GraphQLEndpoint(GraphQL[Context, None]):
    """Strawberry's ASGI view with a fresh per-request context (loaders are never shared between requests)."""

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        services: Services = request.app.state.services
        return build_context(
            services,
            app_auth_token=request.headers.get(TOKEN_HEADER) or None,
            request_id=request.scope.get("state", {}).get("request_id", "-"),
            fresh=_no_cache(request.headers.get("cache-control", "")),
        )


def create_app(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    tracer_provider: TracerProvider | None = None,
) -> Starlette:
    """Build the service. ``transport`` replaces the network under the gateway client (tests);
    ``tracer_provider`` replaces the process's OpenTelemetry provider (tests, embedding)."""
    telemetry = Telemetry(
        Metrics(settings.metrics_operations),
        Tracing(tracer_provider, record_query_text=settings.trace_query_text),
    )
    graphql = GraphQLEndpoint(
        create_schema(introspection=settings.introspection),
        graphql_ide="graphiql" if settings.graphiql else None,
        allow_queries_via_get=True,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = build_services(settings, transport=transport, telemetry=telemetry)
        app.state.services = services
        if settings.closed:
            log.warning("every /graphql request will be refused: set GRAPH_API_KEYS or GRAPH_ALLOW_ANONYMOUS=true")
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

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/healthz", _healthz, methods=["GET"]),
            Route("/readyz", _readyz, methods=["GET"]),
            Route("/metrics", _metrics, methods=["GET"]),
        ],
        middleware=[
            # Outermost first: every request, refused ones included, gets an id, a span, a count and a log line.
            Middleware(RequestTelemetry, telemetry=telemetry),
            Middleware(
                Guard,
                api_keys=settings.api_keys,
                allow_anonymous=settings.allow_anonymous,
                max_body_bytes=settings.max_body_bytes,
            ),
        ],
        lifespan=lifespan,
    )
    app.state.telemetry = telemetry
    return app


def _no_cache(cache_control: str) -> bool:
    """``no-cache`` (or ``max-age=0``, what browsers send on reload): skip cached answers and refresh them."""
    for part in cache_control.lower().split(","):
        name, _, value = part.strip().partition("=")
        if name == "no-cache" or (name == "max-age" and value.strip() == "0"):
            return True
    return False


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
    from graph import logs

    try:
        settings = Settings.from_environ(demo=demo)
    except ConfigError as exc:
        # One line naming the variable, not a traceback: what an operator reads in `docker logs`.
        print(f"alipay-graph: {exc}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None
    logs.configure(settings.log_format, settings.log_level)
    return create_app(settings)
