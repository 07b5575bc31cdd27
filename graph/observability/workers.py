"""Every worker's metrics in one scrape, for ``serve --workers N``: prometheus_client's multiprocess mode.

Each worker is its own process with its own counters, and a scrape of ``/metrics`` reaches one of them. In
multiprocess mode every metric value lives in a memory-mapped file of its process in ``PROMETHEUS_MULTIPROC_DIR``,
and the worker that answers a scrape reads them all (``MultiProcessCollector``): counters and histograms are summed
over every worker that ever ran (a worker's counts outlive it, as they should), gauges use the mode each declares.

The caveats, and how they are handled:

- The directory must be set before any worker imports prometheus_client, and must start empty (files left by an
  earlier run would be added in): the parent (``prepare``) creates a private one before the workers are spawned and
  removes it at exit, or empties the one an operator gave.
- A dead worker's live gauges (in flight, cache entries) must stop counting: the scrape marks every pid whose
  process is gone as dead (``prune``), whether it exited or was killed, since uvicorn's supervisor offers no hook.
- ``Enum`` does not work in this mode: the breaker state becomes a gauge of the same name and labels, 1 for a state
  when any live worker's breaker is in it (each worker has its own breaker).
- The data path's numbers (cache lookups, single-flight) are plain counts each worker keeps, read at scrape time in
  one process; here each worker copies them into metrics after a request, at most once a second, and before it
  answers a scrape (``DataPathPublisher`` in graph/observability/data_path.py).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

ENV = "PROMETHEUS_MULTIPROC_DIR"
_FILE = re.compile(r".+_(\d+)\.db")  # counter_123.db, gauge_livesum_123.db, ...


def directory() -> Path | None:
    """The shared directory, when this process runs in multiprocess mode."""
    path = os.environ.get(ENV)
    return Path(path) if path else None


def prepare(workers: int) -> Callable[[], None]:
    """In the parent, before any worker starts: the workers' metrics directory. Returns what to do at exit.

    One worker and no directory given: nothing (one process, its own registry, as always). An operator's
    ``PROMETHEUS_MULTIPROC_DIR`` is emptied (the files of a previous run would be counted again) and kept.
    """
    given = directory()
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        for stale in given.glob("*.db"):
            stale.unlink()
        return lambda: None
    if workers == 1:
        return lambda: None
    made = tempfile.mkdtemp(prefix="alipay-graph-metrics-")  # private: 0700, a fresh name every run
    os.environ[ENV] = made  # inherited by the workers uvicorn spawns
    return lambda: shutil.rmtree(made, ignore_errors=True)


def prune(path: Path) -> None:
    """Mark every process with files here that no longer runs as dead: its live gauges stop counting."""
    pids = {int(match.group(1)) for name in os.listdir(path) if (match := _FILE.fullmatch(name))}
    for pid in pids:
        if not _alive(pid):
            mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]


def exposition(path: Path) -> bytes:
    """Every worker's metrics, summed as each metric's kind says."""
    prune(path)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(path))  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover  (someone else's process under that pid)
        return True
    return True
