"""The ASGI application: /graphql, /healthz, /readyz, with the gateway client owned by the lifespan."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator

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
from graph.schema import create_schema
from graph.services import Services, build_services

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


def create_app(settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None) -> Starlette:
    """Build the service. ``transport`` replaces the network under the gateway client (tests)."""
    graphql = GraphQLEndpoint(
        create_schema(introspection=settings.introspection),
        graphql_ide="graphiql" if settings.graphiql else None,
        allow_queries_via_get=True,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = build_services(settings, transport=transport)
        app.state.services = services
        if settings.closed:
            log.warning("every /graphql request will be refused: set GRAPH_API_KEYS or GRAPH_ALLOW_ANONYMOUS=true")
        log.info(
            "service ready",
            extra={
                "version": __version__,
                "app_id": services.client.app_id,
                "demo": settings.demo,
                "gateway": services.gateway_url,
            },
        )
        try:
            yield
        finally:
            await services.aclose()

    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/healthz", _healthz, methods=["GET"]),
            Route("/readyz", _readyz, methods=["GET"]),
        ],
        middleware=[
            Middleware(
                Guard,
                api_keys=settings.api_keys,
                allow_anonymous=settings.allow_anonymous,
                max_body_bytes=settings.max_body_bytes,
            )
        ],
        lifespan=lifespan,
    )


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


def from_environ() -> Starlette:
    """Zero-argument factory for ``uvicorn --factory graph.app:from_environ`` (the Dockerfile's command)."""
    from graph import logs

    try:
        settings = Settings.from_environ()
    except ConfigError as exc:
        # One line naming the variable, not a traceback: what an operator reads in `docker logs`.
        print(f"alipay-graph: {exc}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None
    logs.configure(settings.log_format, settings.log_level)
    return create_app(settings)
