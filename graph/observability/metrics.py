"""Prometheus metrics for one app: a registry of its own (several apps in one process never collide).

Every label value comes from a fixed set: routes, outcomes, error codes, attempt numbers (bounded by
ALIPAY_RETRIES), cache backends, and operation names from GRAPH_METRICS_OPERATIONS only. Operation names
are chosen by callers, so any other name counts as ``other`` and a nameless operation as ``anonymous``.
App versions, bundle ids, tokens and keys are never labels.

Cache and single-flight counters are plain numbers kept by those objects and read at scrape time, so
the data path imports nothing from here. Under ``serve --workers N`` every worker's figures are in one scrape
(prometheus_client's multiprocess mode: graph/observability/workers.py); one process is unchanged. There are
two caches: gateway answers (``cache="gateway"``) and whole GraphQL responses (``cache="response"``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Literal, Protocol

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from graph import __version__
from graph.observability import workers

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


class SourceStats(Protocol):  # graph.data.source.VersionSource: what bounds and rescues gateway calls
    @property
    def refreshes(self) -> Mapping[str, int]: ...

    @property
    def stale_served(self) -> int: ...

    @property
    def budget_refused(self) -> int: ...

    @property
    def budget_remaining(self) -> float | None: ...

    @property
    def fleet_waited(self) -> int: ...


# gateway answers, whole responses, documents registered by APQ, single-flight, the data path's own counts
DataPath = tuple[CacheStats, CacheStats, CacheStats, FlightStats, SourceStats]


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
        self._publisher: _DataPathPublisher | None = None
        if folder:
            self._publisher = _DataPathPublisher(r, lambda: self._data_path(), folder)
        else:
            r.register(_DataPathCollector(lambda: self._data_path()))

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


# The data path's families, read from the plain counts of the caches and the single-flight table (``_readings``):
# name -> (kind, help, label names).
DATA_PATH_FAMILIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "graph_cache_lookups": (
        "counter",
        "Cache reads by cache (gateway answers, whole responses, APQ documents), backend and result; "
        "an error reads as a miss; expired: kept for stale-if-error, past its freshness; forged: read from Redis but "
        "failed authentication (ignored, a miss)",
        ("cache", "backend", "result"),
    ),
    "graph_cache_errors": (
        "counter",
        "Cache backend errors by cache, backend and operation",
        ("cache", "backend", "operation"),
    ),
    "graph_cache_entries": ("gauge", "Entries in a memory cache", ("cache",)),
    "graph_singleflight_joined": ("counter", "Callers that shared a gateway call already in flight", ()),
    "graph_singleflight_in_flight": ("gauge", "Distinct gateway fetches in flight", ()),
    "graph_singleflight_fleet_waited": (
        "counter",
        "Gateway calls not made because another instance of the fleet made them (shared through Redis)",
        (),
    ),
    "graph_cache_forced_refresh": (
        "counter",
        "Cache-Control: no-cache reads: refreshed from the gateway, or throttled (GRAPH_CACHE_MIN_REFRESH_S)",
        ("outcome",),
    ),
    "graph_cache_stale_served": (
        "counter",
        "Expired answers served because the gateway could not give a fresh one (GRAPH_CACHE_STALE_S)",
        (),
    ),
    "graph_upstream_budget_remaining": (
        "gauge",
        "Gateway calls left this minute to the merchant that called last (ALIPAY_MAX_CALLS_PER_MIN; fleet-wide)",
        (),
    ),
    "graph_upstream_budget_refused": (
        "counter",
        "Gateway calls not made because the merchant's budget was spent (ALIPAY_MAX_CALLS_PER_MIN)",
        (),
    ),
}
PUBLISH_EVERY_S = 1.0  # multiprocess mode: how stale a worker's data-path figures may be in a scrape


def _readings(current: DataPath) -> Iterator[tuple[str, tuple[str, ...], float]]:
    """(family, label values, value) for every data-path sample."""
    answers, responses, documents, flights, source = current
    for label, cache in (("gateway", answers), ("response", responses), ("documents", documents)):
        for result in ("hit", "miss", "error", "expired", "forged"):
            yield "graph_cache_lookups", (label, cache.name, result), cache.lookups[result]
        for operation in ("get", "set", "ping"):
            yield "graph_cache_errors", (label, cache.name, operation), cache.errors[operation]
        count = cache.entries()
        if count is not None:
            yield "graph_cache_entries", (label,), count
    yield "graph_singleflight_joined", (), flights.joined
    yield "graph_singleflight_in_flight", (), flights.in_flight
    yield "graph_singleflight_fleet_waited", (), source.fleet_waited
    for outcome in ("refreshed", "throttled"):
        yield "graph_cache_forced_refresh", (outcome,), source.refreshes[outcome]
    yield "graph_cache_stale_served", (), source.stale_served
    yield "graph_upstream_budget_refused", (), source.budget_refused
    if source.budget_remaining is not None:
        yield "graph_upstream_budget_remaining", (), source.budget_remaining


def _mode(gauge: str) -> Literal["livesum", "livemin"]:
    # What workers hold apart adds up; the budget is one fleet-wide figure that each worker saw last.
    return "livemin" if gauge == "graph_upstream_budget_remaining" else "livesum"


class _DataPathCollector(Collector):
    """One process: the data path's figures read at scrape time."""

    def __init__(self, data_path: Callable[[], DataPath | None]) -> None:
        self._data_path = data_path

    def describe(self) -> list[Metric]:
        return []  # families depend on what is running; read at collect time only

    def collect(self) -> Iterator[Metric]:
        current = self._data_path()
        if current is None:
            return
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
        for name, (kind, documentation, labels) in DATA_PATH_FAMILIES.items():
            family = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            families[name] = family(name, documentation, labels=list(labels))
        for name, labels, value in _readings(current):
            families[name].add_metric(list(labels), value)
        yield from families.values()


class _DataPathPublisher:
    """Several workers (graph/observability/workers.py): the data path's figures copied into metrics that write to
    the shared directory, counters by what they grew since the last copy, gauges summed over live workers."""

    def __init__(self, registry: CollectorRegistry, data_path: Callable[[], DataPath | None], folder: Path) -> None:
        self._data_path = data_path
        self._folder = folder
        self._metrics: dict[str, Counter | Gauge] = {}
        for name, (kind, documentation, labels) in DATA_PATH_FAMILIES.items():
            self._metrics[name] = (
                Counter(name, documentation, labels, registry=registry)
                if kind == "counter"
                else Gauge(name, documentation, labels, registry=registry, multiprocess_mode=_mode(name))
            )
        self._sent: dict[tuple[str, tuple[str, ...]], float] = {}
        self._at = -math.inf

    def publish(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._at < PUBLISH_EVERY_S:
            return
        self._at = now
        current = self._data_path()
        for name, labels, value in _readings(current) if current is not None else ():  # None: before the lifespan
            metric = self._metrics[name]
            child = metric.labels(*labels) if labels else metric
            if isinstance(child, Counter):
                sent = self._sent.get((name, labels), 0.0)
                child.inc(value - sent if value >= sent else value)  # smaller: a new cache (a lifespan restarted)
                self._sent[(name, labels)] = value
            else:
                child.set(value)

    def exposition(self) -> bytes:
        self.publish(force=True)  # this worker's figures as they are now; the others' as they last published them
        return workers.exposition(self._folder)


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
