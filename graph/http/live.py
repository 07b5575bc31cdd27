"""What both live transports share (graphql-transport-ws in ``live_ws``, SSE in ``live_sse``): who may hold how
many connections and subscriptions, and running one operation as a stream of GraphQL results.

Callers are let in by the edge's ``Access`` (the same keys, merchant-token check, closed-by-default rule and rate
limit as queries). Counts are per API key (per client address for anonymous callers) and per instance:
``GRAPH_LIVE_MAX_CONNECTIONS_PER_KEY`` open WebSockets and SSE streams, ``GRAPH_LIVE_MAX_PER_KEY`` subscriptions.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError
from strawberry.schema.base import BaseSchema
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.types.graphql import OperationType

from graph.config import Settings
from graph.http.access import Access, Caller
from graph.http.persisted import PersistedQueries, PersistedQueryRefusal
from graph.http.request import JSON as JSON_MEDIA, GraphQLRequest, RequestError, from_json_object
from graph.observability import request_state
from graph.services import Services
from resolvers.context import build_context

_OPERATIONS = (OperationType.SUBSCRIPTION, OperationType.QUERY)
TOO_MANY = "TOO_MANY_SUBSCRIPTIONS"


@dataclass(frozen=True, slots=True)
class Refused(Exception):
    """An operation refused before it ran: one GraphQL error with our ``extensions.code``."""

    message: str
    code: str

    def errors(self) -> list[dict[str, Any]]:
        return [{"message": self.message, "extensions": {"code": self.code}}]


@dataclass(frozen=True, slots=True)
class Result:
    payload: dict[str, Any]  # a GraphQL response: data, errors, extensions
    before_execution: bool  # refused before it ran (parse, validation, arguments of the operation)


class LiveOperations:
    def __init__(self, schema: BaseSchema, settings: Settings, access: Access) -> None:
        self.schema = schema
        self.settings = settings
        self.access = access
        self._connections: Counter[str] = Counter()
        self._subscriptions: Counter[str] = Counter()
        self._services: Services | None = None
        self._persisted: PersistedQueries | None = None

    def start(self, services: Services, persisted: PersistedQueries, access: Access) -> None:
        # The edge's access as started: with Redis its limits are the fleet's (the one built before start is not).
        self._services, self._persisted, self.access = services, persisted, access

    @property
    def running(self) -> bool:
        return self._services is not None

    @staticmethod
    def holder(caller: Caller, client: tuple[str, int] | None) -> str:
        """Who the counts are kept for: the API key's fingerprint, or the client address without a key."""
        return f"key:{caller.key}" if caller.key else f"ip:{client[0] if client else '-'}"

    @contextlib.contextmanager
    def connection(self, holder: str) -> Iterator[bool]:
        """Count one open connection while the block runs; yields False (and counts nothing) over the limit."""
        limit = self.settings.live_max_connections_per_key
        if self._connections[holder] >= limit:
            yield False
            return
        self._connections[holder] += 1
        try:
            yield True
        finally:
            self._release(self._connections, holder)

    def connection_refusal(self) -> Refused:
        limit = self.settings.live_max_connections_per_key
        return Refused(f"at most {limit} live connections per API key (GRAPH_LIVE_MAX_CONNECTIONS_PER_KEY)", TOO_MANY)

    def request(self, payload: Any) -> GraphQLRequest:
        """A subscribe payload (or an SSE request body) as a request; ``Refused`` when it is not one."""
        try:
            return from_json_object(payload, JSON_MEDIA)
        except RequestError as exc:
            raise Refused(exc.message, "BAD_REQUEST") from None

    async def stream(self, request: GraphQLRequest, caller: Caller, holder: str) -> AsyncGenerator[Result, None]:
        """Run one operation (a subscription, or a query: one result), counted against the holder's subscriptions
        while it runs. Raises ``Refused`` before anything ran."""
        if self._services is None or self._persisted is None:  # pragma: no cover  (the lifespan starts it)
            raise RuntimeError("the live endpoint was not started: serve the app with its lifespan")
        limit = self.settings.live_max_per_key
        if self._subscriptions[holder] >= limit:
            raise Refused(f"at most {limit} live subscriptions per API key (GRAPH_LIVE_MAX_PER_KEY)", TOO_MANY)
        try:
            request = (await self._persisted.resolve(request)).request
        except PersistedQueryRefusal as refusal:
            raise Refused(refusal.message, refusal.code) from None
        if not request.query:
            raise Refused("no GraphQL query found in the request: send `query`", "BAD_REQUEST")
        state = request_state.current()
        context = build_context(
            self._services,
            app_auth_token=caller.app_auth_token,
            request_id=state.request_id if state is not None else "-",
        )
        self._subscriptions[holder] += 1
        try:
            results = await self.schema.stream(
                request.query,
                variable_values=dict(request.variables) if request.variables else None,
                context_value=context,
                operation_name=request.operation_name,
                allowed_operation_types=_OPERATIONS,
            )
            async with contextlib.aclosing(results):
                async for result in results:
                    if not isinstance(result, ExecutionResult):  # pragma: no cover  (@defer/@stream: not served)
                        continue
                    yield _result(result.data, result.errors, result.extensions, isinstance(result, PreExecutionError))
        finally:
            self._release(self._subscriptions, holder)

    @staticmethod
    def _release(counts: Counter[str], holder: str) -> None:
        counts[holder] -= 1
        if counts[holder] <= 0:
            del counts[holder]


def _result(data: Any, errors: list[GraphQLError] | None, extensions: dict[str, Any] | None, before: bool) -> Result:
    payload: dict[str, Any] = {} if before else {"data": data}
    if errors:
        payload["errors"] = [error.formatted for error in errors]
    if extensions:
        payload["extensions"] = extensions
    return Result(payload, before)
