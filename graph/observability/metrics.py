"""Prometheus metrics for one app: a registry of its own (several apps in one process never collide).

Every label value comes from a fixed set: routes, outcomes, error codes, attempt numbers (bounded by
ALIPAY_RETRIES), cache backends, and operation names from GRAPH_METRICS_OPERATIONS only. Operation names
are chosen by callers, so any other name counts as ``other`` and a nameless operation as ``anonymous``.
App versions, bundle ids, tokens and keys are never labels.

Cache, single-flight and data-path counts are plain numbers kept by those objects and read at scrape time
(graph/observability/data_path.py), so the data path imports nothing from here. Under ``serve --workers N`` every
worker's figures are in one scrape (prometheus_client's multiprocess mode: graph/observability/workers.py); one
process is unchanged. The caches: gateway answers, whole GraphQL responses, APQ documents.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from graph import __version__
from graph.observability import workers
from graph.observability.data_path import DataPath, DataPathCollector, DataPathPublisher

CONTENT_TYPE = CONTENT_TYPE_LATEST
ROUTES = frozenset({"/graphql", "/healthz", "/readyz", "/metrics"})
# graphql-core's own errors (syntax, validation) carry no code; ours come from graph.errors and the guard.
ERROR_CODES = frozenset(
    {
        "BAD_USER_INPUT",
        "UNAUTHENTICATED",
        "QUERY_TOO_COMPLEX",
        "ALIPAY_BUSINESS_ERROR",
        "ALIPAY_UNAVAILABLE",
        "ALIPAY_BAD_SIGNATURE",
        "INTERNAL_ERROR",
        "GRAPHQL_VALIDATION_FAILED",
    }
)
BREAKER_STATES = ("closed", "half_open", "open")
# From a cache hit (~1 ms) to a gateway call that spends every retry (3 x 5 s).
LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0)


class Metrics:
    def __init__(self, operations: Collection[str] = ()) -> None:
        self.registry = CollectorRegistry()
        # serve --workers N: every worker's figures through the shared directory (graph/observability/workers.py).
        folder = workers.directory()
        self._operations = frozenset(operations)
        self._data_path: Callable[[], DataPath | None] = lambda: None
        r = self.registry
        self.http_requests = Counter(
            "graph_http_requests", "HTTP requests answered, by route and status code", ["route", "status"], registry=r
        )
        self.http_in_flight = Gauge(
            "graph_http_requests_in_flight", "HTTP requests being answered", registry=r, multiprocess_mode="livesum"
        )
        self.operations = Counter(
            "graph_operations",
            "GraphQL operations by operation name (GRAPH_METRICS_OPERATIONS, else other/anonymous) and outcome",
            ["operation", "outcome"],
            registry=r,
        )
        self.operation_seconds = Histogram(
            "graph_operation_duration_seconds",
            "Time to answer a GraphQL operation",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.operation_errors = Counter(
            "graph_operation_errors", "GraphQL errors returned, by extensions.code", ["code"], registry=r
        )
        self.gateway_calls = Counter(
            "graph_gateway_calls",
            "Alipay gateway call attempts by method, outcome and attempt number (1 = first try)",
            ["method", "outcome", "attempt"],
            registry=r,
        )
        self.gateway_seconds = Histogram(
            "graph_gateway_call_duration_seconds",
            "Time of one gateway call attempt",
            ["method", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.gateway_in_flight = Gauge(
            "graph_gateway_calls_in_flight", "Gateway call attempts in flight", registry=r, multiprocess_mode="livesum"
        )
        # The gateway circuit breaker (graph.gateway.breaker) sets this through Telemetry.breaker(state).
        self.breaker_state: Enum | _BreakerStates = (
            _BreakerStates(r)
            if folder
            else Enum(
                "graph_circuit_breaker_state",
                "State of the gateway circuit breaker",
                states=list(BREAKER_STATES),
                registry=r,
            )
        )
        build = Gauge("graph_build_info", "The running version", ["version"], registry=r, multiprocess_mode="livemax")
        build.labels(__version__).set(1)
        self._publisher: DataPathPublisher | None = None
        if folder:
            self._publisher = DataPathPublisher(r, lambda: self._data_path(), folder)
        else:
            r.register(DataPathCollector(lambda: self._data_path()))

    def watch(self, data_path: Callable[[], DataPath | None]) -> None:
        """Where the cache and the single-flight table are (they exist only while the lifespan runs)."""
        self._data_path = data_path

    def operation_label(self, name: str | None) -> str:
        if name is None:
            return "anonymous"
        return name if name in self._operations else "other"

    def answered(self, route: str, status: int) -> None:
        """One HTTP request answered (any route)."""
        self.http_requests.labels(route, str(status)).inc()
        if self._publisher is not None:
            self._publisher.publish()

    def exposition(self) -> bytes:
        if self._publisher is None:
            return generate_latest(self.registry)
        return self._publisher.exposition()


def route_label(path: str) -> str:
    return path if path in ROUTES else "other"


def error_code_label(code: object) -> str:
    return code if isinstance(code, str) and code in ERROR_CODES else "other"


class _BreakerStates:
    """Several workers: the breaker state as a gauge per state (``Enum`` does not work across processes), with the
    Enum's name and labels; 1 for a state when any live worker's breaker is in it."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._gauge = Gauge(
            "graph_circuit_breaker_state",
            "State of the gateway circuit breaker (1: some live worker's breaker is in it)",
            ["graph_circuit_breaker_state"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.state(BREAKER_STATES[0])

    def state(self, state: str) -> None:
        for name in BREAKER_STATES:
            self._gauge.labels(name).set(1 if name == state else 0)
