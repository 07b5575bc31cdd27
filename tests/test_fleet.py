"""A fleet that behaves as one service: three real ``serve`` processes on one real redis-server share the rate limit
and the refused-key limit, fall back to their own limits (one WARNING each) when Redis goes, and ``--workers 2``
shows both workers' metrics in one scrape.

Services run ``--demo`` (their own in-process sandbox gateway): ``{ __typename }`` asks no gateway anyway.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector

from graph.observability import workers
from tests.processes import Service
from tests.redis_server import RedisServer
from tests.test_metrics import parse, value

QUERY = {"query": "{ __typename }"}
KEYS = [f"fleet-key-{n}" for n in range(8)]
PER_MINUTE = 30
FAILURES_PER_MINUTE = 5


@pytest.fixture(scope="module")
def fleet(_redis_process: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Service]]:
    """Three instances on the session's redis-server (each test empties Redis through ``redis_server``)."""
    if _redis_process.process is None:
        _redis_process.start()
    env = {
        "GRAPH_CACHE_URL": _redis_process.url,
        "GRAPH_API_KEYS": ",".join(KEYS),
        "GRAPH_RATE_LIMIT_PER_MIN": str(PER_MINUTE),
        "GRAPH_AUTH_FAILURES_PER_MIN": str(FAILURES_PER_MINUTE),
        "GRAPH_LOG_LEVEL": "INFO",
    }
    folder = tmp_path_factory.mktemp("fleet")
    instances = [Service(env, folder / f"instance-{n}.log", "--demo") for n in range(3)]
    try:
        asyncio.run(_all_up(instances))
        yield instances
    finally:
        for instance in instances:
            instance.stop()


def _urls(instances: list[Service]) -> list[str]:
    return [instance.url for instance in instances]


async def _all_up(instances: list[Service]) -> None:
    await asyncio.gather(*(instance.ready() for instance in instances))


async def _spread(urls: list[str], count: int, headers: dict[str, str]) -> list[int]:
    """``count`` requests at once, round robin over the instances: their status codes."""
    clients = [httpx.AsyncClient(base_url=url, timeout=20) for url in urls]
    try:
        turns = itertools.cycle(clients)
        answers = await asyncio.gather(
            *(next(turns).post("/graphql", json=QUERY, headers=headers) for _ in range(count))
        )
    finally:
        for client in clients:
            await client.aclose()
    return [answer.status_code for answer in answers]


async def test_the_rate_limit_is_the_fleet_s(fleet: list[Service], redis_server: RedisServer) -> None:
    statuses = await _spread(_urls(fleet), 3 * PER_MINUTE, {"Authorization": f"Bearer {KEYS[0]}"})
    # One bucket for the three: the limit (plus what refills while the requests run, 0.5 a second), not 3 x 30.
    assert PER_MINUTE <= statuses.count(200) <= PER_MINUTE + 2, statuses.count(200)
    assert statuses.count(429) == len(statuses) - statuses.count(200)
    other = await _spread(_urls(fleet), 3, {"Authorization": f"Bearer {KEYS[1]}"})
    assert other == [200] * 3  # another key: its own bucket


async def test_without_redis_each_instance_has_its_own_limit(start_app: Callable[..., str]) -> None:
    """The figure before: three instances with in-process caches let three limits through."""
    urls = [start_app(api_keys=frozenset(KEYS), allow_anonymous=False, rate_limit_per_min=PER_MINUTE) for _ in range(3)]
    statuses = await _spread(urls, 3 * PER_MINUTE, {"Authorization": f"Bearer {KEYS[0]}"})
    assert statuses.count(200) == 3 * PER_MINUTE


async def test_the_refused_key_limit_is_the_fleet_s(fleet: list[Service], redis_server: RedisServer) -> None:
    clients = [httpx.AsyncClient(base_url=instance.url, timeout=20) for instance in fleet]
    wrong = {"Authorization": "Bearer a-guess"}
    try:
        statuses = [(await clients[n % 3].post("/graphql", json=QUERY, headers=wrong)).status_code for n in range(12)]
        # Guessing from one address goes no faster with three instances to ask.
        assert statuses == [401] * FAILURES_PER_MINUTE + [429] * (12 - FAILURES_PER_MINUTE)
        right = {"Authorization": f"Bearer {KEYS[2]}"}
        assert (await clients[2].post("/graphql", json=QUERY, headers=right)).status_code == 429  # from there
    finally:
        for client in clients:
            await client.aclose()


async def test_redis_going_away_leaves_each_instance_its_own_limits(
    fleet: list[Service], redis_server: RedisServer
) -> None:
    key = {"Authorization": f"Bearer {KEYS[3]}"}
    assert (await _spread(_urls(fleet), 3, key)) == [200] * 3  # shared: three tokens of the fleet's 30 spent
    redis_server.stop()
    # Each instance alone, with a full bucket of its own: 30 each, so 3 x 30 of 3 x 31 asked.
    statuses = await _spread(_urls(fleet), 3 * (PER_MINUTE + 1), key)
    assert statuses.count(200) == 3 * PER_MINUTE
    assert set(statuses) == {200, 429}
    await asyncio.sleep(0.5)  # the batched log lines are written every 0.2 s
    for instance in fleet:
        warnings = instance.lines("rate limits and the refused-key limit are this instance's own")
        assert [line["level"] for line in warnings] == ["WARNING"]  # once, however many requests
    redis_server.start()
    await asyncio.sleep(1.2)  # past the pause between two tries of a failed Redis
    assert (await _spread(_urls(fleet), 3, key)) == [200] * 3  # the new, empty Redis: a full shared bucket
    await asyncio.sleep(0.5)
    for instance in fleet:
        assert len(instance.lines("redis reachable again: rate limits and the refused-key limit")) == 1


def _only(folder: Path, pattern: str) -> Path:
    (found,) = folder.glob(pattern)
    return found


def _running(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _counts_by_pid(folder: Path) -> dict[int, float]:
    """graph_http_requests_total{route="/graphql"} in each worker's own file."""
    counts: dict[int, float] = {}
    for path in folder.glob("counter_*.db"):
        pid = int(path.stem.split("_")[1])
        for metric in MultiProcessCollector.merge([str(path)]):  # type: ignore[no-untyped-call]
            for sample in metric.samples:
                if sample.name == "graph_http_requests_total" and sample.labels.get("route") == "/graphql":
                    counts[pid] = counts.get(pid, 0.0) + sample.value
    return counts


async def _scrape(url: str) -> dict[Any, float]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    samples, _ = parse(response.text)
    return samples


async def _fresh_connections(url: str, count: int) -> None:
    """``count`` requests, ten at a time, each on a new connection: the workers share them."""
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=20, limits=limits) as http:
        for _ in range(count // 10):
            answers = await asyncio.gather(*(http.post("/graphql", json=QUERY) for _ in range(10)))
            assert {answer.status_code for answer in answers} == {200}


async def test_two_workers_one_scrape(tmp_path: Path) -> None:
    env = {"GRAPH_LOG_LEVEL": "INFO", "TMPDIR": str(tmp_path)}  # the private metrics folder goes here
    served = Service(env, tmp_path / "workers.log", "--demo", "--workers", "2")
    try:
        await served.ready()
        await served.started(2)
        await _fresh_connections(served.url, 60)
        folder = _only(tmp_path, "alipay-graph-metrics-*")
        counts = _counts_by_pid(folder)
        assert len(counts) == 2, counts  # both workers answered some
        assert all(count > 0 for count in counts.values())
        samples = await _scrape(served.url)
        assert value(samples, "graph_http_requests_total", route="/graphql", status="200") == 60  # all, in one
        assert value(samples, "graph_circuit_breaker_state", graph_circuit_breaker_state="closed") == 1
        assert value(samples, "graph_cache_lookups_total", backend="memory", cache="response", result="hit") > 0

        # A worker killed: uvicorn starts another; its requests still count, its live gauges no longer do.
        dead = next(iter(counts))
        assert (folder / f"gauge_livesum_{dead}.db").exists()
        os.kill(dead, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _running(dead):  # until uvicorn's supervisor reaps it (a zombie still has a pid)
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        samples = await _scrape(served.url)
        assert not (folder / f"gauge_livesum_{dead}.db").exists()
        assert value(samples, "graph_http_requests_total", route="/graphql", status="200") == 60
        assert value(samples, "graph_http_requests_in_flight") == 1  # the scrape itself, whoever answers it
    finally:
        served.stop()
    assert served.process.returncode == 0
    assert not folder.exists()  # the parent removes its folder at exit


async def test_an_operator_s_metrics_folder_is_emptied_at_start(tmp_path: Path) -> None:
    given = tmp_path / "metrics"
    given.mkdir()
    stale = MmapedDict(str(given / "counter_1.db"))  # type: ignore[no-untyped-call]  # a previous run: 1000 requests
    labels = {"route": "/graphql", "status": "200"}
    stale.write_value(  # type: ignore[no-untyped-call]
        mmap_key("graph_http_requests", "graph_http_requests_total", list(labels), list(labels.values()), "x"),
        1000.0,
        0.0,
    )
    stale.close()  # type: ignore[no-untyped-call]
    served = Service({"PROMETHEUS_MULTIPROC_DIR": str(given)}, tmp_path / "w.log", "--demo")
    try:
        await served.ready()
        await _fresh_connections(served.url, 10)
        samples = await _scrape(served.url)
        assert value(samples, "graph_http_requests_total", route="/graphql", status="200") == 10
        assert not (given / "counter_1.db").exists()
    finally:
        served.stop()
    assert given.is_dir()  # the operator's, kept


def test_the_metrics_folder_the_parent_prepares(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(workers.ENV, "placeholder")
    monkeypatch.delenv(workers.ENV)  # restored to absent after the test, whatever prepare sets
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    tempfile.tempdir = None  # read TMPDIR again
    try:
        workers.prepare(1)()  # one process, no folder given: nothing to do
        assert workers.ENV not in os.environ
        clean_up = workers.prepare(2)
        made = Path(os.environ[workers.ENV])
        assert made.parent == tmp_path
        assert made.stat().st_mode & 0o777 == 0o700  # private
        clean_up()
        assert not made.exists()
    finally:
        tempfile.tempdir = None
    given = tmp_path / "given" / "metrics"
    monkeypatch.setenv(workers.ENV, str(given))
    workers.prepare(1)()  # made if missing
    (given / "counter_7.db").write_bytes(b"stale")
    (given / "notes.txt").write_text("not ours")
    workers.prepare(4)()
    assert sorted(path.name for path in given.iterdir()) == ["notes.txt"]  # emptied of metrics files, kept
