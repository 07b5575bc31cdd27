"""The GraphQL schema: the root Query, federation wiring and the schema-wide extensions."""

from __future__ import annotations

import logging
from typing import Any, Final

import strawberry
from graphql import GraphQLError
from strawberry.extensions import DisableIntrospection, SchemaExtension
from strawberry.federation.schema import FederationAny, Schema as FederationSchema
from strawberry.schema.config import BatchingConfig, StrawberryConfig
from strawberry.types import ExecutionContext

from graph.errors import BadUserInput
from graph.execution.cache_age import CacheAge
from graph.execution.complexity import DocumentLimits
from graph.execution.limits import UpstreamBudget
from graph.execution.masking import MaskInternalErrors, should_mask
from graph.observability.operation_telemetry import OperationTelemetry
from graph.types.app import MiniApp
from graph.types.version import MiniAppVersion
from resolvers import app, live, version
from resolvers.context import Info
from resolvers.version import MiniAppVersionResult

log = logging.getLogger("graph.errors")

# The Federation 2 version the SDL links: the lowest that has what we use (`@key`, in every 2.x). A higher one buys
# nothing and shuts out composers that do not know it yet: The Guild's (`@theguild/federation-composition`, what
# GraphQL Hive and Mesh Compose run) knows v2.0 to v2.9 and refuses v2.10 and later outright.
FEDERATION_VERSION: Final = "2.0"


@strawberry.type(description="Read the state of mini-program versions on Alipay and the other clients it runs in.")
class Query:
    mini_app_version: MiniAppVersion | None = strawberry.field(
        resolver=version.mini_app_version,
        description="One version of the mini-program on one client (default: Alipay). "
        "Null with an error when the gateway refuses or cannot be reached.",
    )
    mini_app_versions: list[MiniAppVersionResult] = strawberry.field(
        resolver=version.mini_app_versions,
        description="The same version on several clients, fetched concurrently; one client's failure does not fail "
        "the rest. Without `bundleIds`: the five known clients (Alipay, DingTalk, Amap, Tmall Genie, Alipay IoT).",
    )
    mini_app: MiniApp = strawberry.field(
        resolver=app.mini_app,
        description="The mini-program that the app id and the merchant token designate.",
    )


@strawberry.type(description="Live: states pushed as they change (graphql-transport-ws on /graphql, or SSE).")
class Subscription:
    mini_app_version_changed = strawberry.subscription(
        resolver=live.mini_app_version_changed,
        description="The current state of the version on each client at once, then an event each time one of them "
        "changes (any field, or into or out of an error). Polled once per GRAPH_LIVE_POLL_S for every subscriber "
        "of the same version, client and merchant. Without `bundleIds`: the five known clients.",
    )


class Schema(FederationSchema):
    def entities_resolver(self, info: Info, representations: list[FederationAny]) -> list[FederationAny]:
        # Each reference is checked on its own: a bad one is an error for that item, never a null list.
        # (Strawberry's own resolver raises for an unknown __typename, which nulls the whole list.)
        # Messages never echo the caller's values.
        results: list[Any] = []
        for representation in representations:
            if not isinstance(representation, dict):
                problem = "a representation must be an object"
            elif representation.get("__typename") is None:
                problem = "__typename is missing"
            elif representation["__typename"] != "MiniAppVersion":
                problem = "only MiniAppVersion is resolvable here"
            else:
                results.append(version.mini_app_version_reference(info.context, representation))
                continue
            results.append(BadUserInput(f"bad entity reference: {problem}"))
        return results

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        # Errors meant for callers (bad input, gateway refusals) are outcomes, not faults: only bugs are logged.
        request_id = getattr(getattr(execution_context, "context", None), "request_id", "-")
        for error in errors:
            if should_mask(error):
                log.error("unexpected error", exc_info=error.original_error, extra={"request_id": request_id})


def create_schema(*, introspection: bool = True, batch_operations: int | None = None) -> Schema:
    """``batch_operations``: most operations in one batched request (a JSON array), None for no batching."""
    extensions: list[type[SchemaExtension]] = [
        # OperationTelemetry first: its span encloses the rest, and it sees errors as callers do (masked).
        OperationTelemetry,
        # DocumentLimits parses and validates, each through a bounded LRU (a document nearly always repeats),
        # with the token, depth and alias limits in front so that an oversized document costs neither.
        DocumentLimits,
        MaskInternalErrors,
        UpstreamBudget,
        CacheAge,
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    batching = None if batch_operations is None else BatchingConfig(max_operations=batch_operations)
    return Schema(
        query=Query,
        subscription=Subscription,
        extensions=extensions,
        federation_version=FEDERATION_VERSION,
        config=StrawberryConfig(batching_config=batching),
    )
