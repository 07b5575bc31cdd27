"""Prometheus metrics for one app: a registry of its own (several apps in one process never collide).

Every label value comes from a fixed set: routes, outcomes, error codes, attempt numbers (bounded by
ALIPAY_RETRIES), cache backends, and operation names from GRAPH_METRICS_OPERATIONS only. Operation names
are chosen by callers, so any other name counts as ``other`` and a nameless operation as ``anonymous``.
App versions, bundle ids, tokens and keys are never labels.

Cache and single-flight counters are plain numbers kept by those objects and read at scrape time, so
the data path imports nothing from here. There are two caches: gateway answers (``cache="gateway"``) and
whole GraphQL responses (``cache="response"``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from graph import __version__

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


class CacheStats(Protocol):  # graph.data.cache.AnswerCache
    @property
    def name(self) -> str: ...

    @property
    def lookups(self) -> Mapping[str, int]: ...

    @property
    def errors(self) -> Mapping[str, int]: ...

    def entries(self) -> int | None: ...


class FlightStats(Protocol):  # graph.data.flight.SingleFlight
    @property
    def joined(self) -> int: ...

    @property
    def in_flight(self) -> int: ...


# gateway answers, whole responses, documents registered by APQ, single-flight
DataPath = tuple[CacheStats, CacheStats, CacheStats, FlightStats]


class Metrics:
    def __init__(self, operations: Collection[str] = ()) -> None:
        self.registry = CollectorRegistry()
        self._operations = frozenset(operations)
        self._data_path: Callable[[], DataPath | None] = lambda: None
        r = self.registry
        self.http_requests = Counter(
            "graph_http_requests", "HTTP requests answered, by route and status code", ["route", "status"], registry=r
        )
        self.http_in_flight = Gauge("graph_http_requests_in_flight", "HTTP requests being answered", registry=r)
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
        self.gateway_in_flight = Gauge("graph_gateway_calls_in_flight", "Gateway call attempts in flight", registry=r)
        # The gateway circuit breaker (graph.gateway.breaker) sets this through Telemetry.breaker(state).
        self.breaker_state = Enum(
            "graph_circuit_breaker_state",
            "State of the gateway circuit breaker",
            states=list(BREAKER_STATES),
            registry=r,
        )
        Gauge("graph_build_info", "The running version", ["version"], registry=r).labels(__version__).set(1)
        r.register(_DataPathCollector(lambda: self._data_path()))

    def watch(self, data_path: Callable[[], DataPath | None]) -> None:
        """Where the cache and the single-flight table are (they exist only while the lifespan runs)."""
        self._data_path = data_path

    def operation_label(self, name: str | None) -> str:
        if name is None:
            return "anonymous"
        return name if name in self._operations else "other"

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def route_label(path: str) -> str:
    return path if path in ROUTES else "other"


def error_code_label(code: object) -> str:
    return code if isinstance(code, str) and code in ERROR_CODES else "other"


class _DataPathCollector(Collector):
    def __init__(self, data_path: Callable[[], DataPath | None]) -> None:
        self._data_path = data_path

    def describe(self) -> list[Metric]:
        return []  # families depend on what is running; read at collect time only

    def collect(self) -> Iterator[Metric]:
        current = self._data_path()
        if current is None:
            return
        answers, responses, documents, flights = current
        lookups = CounterMetricFamily(
            "graph_cache_lookups",
            "Cache reads by cache (gateway answers, whole responses, APQ documents), backend and result; "
            "an error reads as a miss; forged: read from Redis but failed authentication (ignored, a miss)",
            labels=["cache", "backend", "result"],
        )
        errors = CounterMetricFamily(
            "graph_cache_errors",
            "Cache backend errors by cache, backend and operation",
            labels=["cache", "backend", "operation"],
        )
        entries = GaugeMetricFamily("graph_cache_entries", "Entries in a memory cache", labels=["cache"])
        for label, cache in (("gateway", answers), ("response", responses), ("documents", documents)):
            for result in ("hit", "miss", "error", "forged"):
                lookups.add_metric([label, cache.name, result], cache.lookups[result])
            for operation in ("get", "set", "ping"):
                errors.add_metric([label, cache.name, operation], cache.errors[operation])
            count = cache.entries()
            if count is not None:
                entries.add_metric([label], count)
        yield lookups
        yield errors
        yield entries
        yield CounterMetricFamily(
            "graph_singleflight_joined", "Callers that shared a gateway call already in flight", value=flights.joined
        )
        yield GaugeMetricFamily(
            "graph_singleflight_in_flight", "Distinct gateway fetches in flight", value=flights.in_flight
        )
