"""The data path's figures as metrics: what the caches, the single-flight table and the data path count.

Those objects keep plain numbers (they import nothing of Prometheus); here they are read: at scrape time in one
process (``DataPathCollector``), or copied into the shared files under ``serve --workers N``
(``DataPathPublisher``, graph/observability/workers.py), from one table of families (``DATA_PATH_FAMILIES``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Literal, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from graph.observability import workers


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


class DataPathCollector(Collector):
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


class DataPathPublisher:
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
