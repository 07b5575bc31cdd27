"""The ASGI application: /graphql, /healthz, /readyz, with the gateway client owned by the lifespan.

``GET /graphql`` from a browser serves the GraphiQL playground; its assets are under ``/graphiql/static/``.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from graph import __version__
from graph.bodylimit import BodyLimit
from graph.config import ConfigError, Settings
from graph.endpoint import GraphQLEndpoint
from graph.guard import Guard
from graph.ide.page import BUILD_COMMAND, STATIC_DIR, STATIC_PATH, assets_built, render_page
from graph.ratelimit import RateLimit
from graph.response_cache import ResponseCache
from graph.schema import create_schema
from graph.services import Services, build_services

log = logging.getLogger("graph.app")


def create_app(
    settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None, ide_static_dir: Path = STATIC_DIR
) -> Starlette:
    """Build the service. ``transport`` replaces the network under the gateway client (tests);
    ``ide_static_dir`` is where GraphiQL's assets were built (``python -m graph build-ide``)."""
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
    ]
    if page is not None:
        # Public like the page (nothing secret in GraphiQL's code); StaticFiles serves only files inside the folder.
        routes.append(Mount(STATIC_PATH, StaticFiles(directory=ide_static_dir), name="graphiql-static"))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = build_services(settings, transport=transport)
        app.state.services = services
        if settings.closed:
            log.warning("every /graphql request will be refused: set GRAPH_API_KEYS or GRAPH_ALLOW_ANONYMOUS=true")
        if settings.graphiql and page is None:
            log.warning(
                "GraphiQL assets are not built: the playground loads its scripts from a CDN and stays on "
                "'Loading...' without internet; build them with `%s`",
                BUILD_COMMAND,
            )
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

    app = Starlette(
        routes=routes,
        # Outermost first, each a small pure-ASGI module: who may call, how often, how much they may send (read
        # here, bounded, before anything else reads it), then the whole-response cache and its fast path.
        middleware=[
            Middleware(Guard, api_keys=settings.api_keys, allow_anonymous=settings.allow_anonymous),
            Middleware(RateLimit, per_minute=settings.rate_limit_per_min),
            Middleware(BodyLimit, max_bytes=settings.max_body_bytes),
            Middleware(ResponseCache, default_ttl_s=settings.cache_ttl_s),
        ],
        lifespan=lifespan,
    )
    app.state.schema = schema  # the fast path in graph.response_cache executes on it directly
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
