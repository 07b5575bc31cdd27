"""GET /metrics after real requests: scraped over HTTP and parsed with prometheus_client's own parser."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from graph import __version__
from graph.gateway.attempts import outcome_of
from graph.gateway.errors import GatewayError
from graph.observability.metrics import Metrics, error_code_label, route_label
from graph.observability.telemetry import Telemetry
from graph.sandbox import Fault, SandboxGateway
from tests.conftest import MERCHANT_TOKEN

NAMED = "query Status($v: String!) { miniAppVersion(appVersion: $v) { status } }"
OTHER = "query Dashboard($v: String!) { miniAppVersion(appVersion: $v) { appName } }"
ANONYMOUS = "query($v: String!) { miniAppVersion(appVersion: $v) { status } }"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> tuple[Samples, dict[str, str]]:
    """Every sample keyed by (name, labels), and every family's type."""
    samples: Samples = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples, types


async def scrape(url: str) -> tuple[Samples, dict[str, str], str]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples, types = parse(response.text)
    return samples, types, response.text


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def ask(http: httpx.AsyncClient, query: str, version: str = "0.0.1", **headers: str) -> dict[str, Any]:
    response = await http.post("/graphql", json={"query": query, "variables": {"v": version}}, headers=headers)
    body: dict[str, Any] = response.json()
    return body


async def test_metrics_move_with_real_requests(start_app: Callable[..., str], sandbox: SandboxGateway) -> None:
    url = start_app(metrics_operations=frozenset({"Status"}))
    before, types, _ = await scrape(url)
    assert value(before, "graph_build_info", version=__version__) == 1
    assert value(before, "graph_circuit_breaker_state", graph_circuit_breaker_state="closed") == 1
    assert types["graph_operations"] == "counter"
    assert types["graph_operation_duration_seconds"] == "histogram"
    assert types["graph_gateway_call_duration_seconds"] == "histogram"
    assert value(before, "graph_cache_lookups_total", cache="gateway", backend="memory", result="hit") == 0

    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        assert "errors" not in await ask(http, NAMED)  # miss, one gateway call
        assert "errors" not in await ask(http, NAMED, **{"X-Alipay-App-Auth-Token": MERCHANT_TOKEN})  # miss
        assert "errors" not in await ask(http, NAMED)  # the same request: the whole response from its cache
        assert "errors" not in await ask(http, OTHER)  # another document, a name nobody listed: answer cache hit
        assert "errors" not in await ask(http, ANONYMOUS)  # answer cache hit
        sandbox.fail_next(Fault.BUSY, times=2, app_version="0.0.2")
        assert "errors" not in await ask(http, NAMED, "0.0.2")  # attempts 1 and 2 busy, 3 succeeds
        missing = await ask(http, NAMED, "9.9.9")  # a business error: the operation fails
        assert missing["errors"][0]["extensions"]["code"] == "ALIPAY_BUSINESS_ERROR"

    after, _, text = await scrape(url)
    assert value(after, "graph_operations_total", operation="Status", outcome="ok") == 4
    assert value(after, "graph_operations_total", operation="Status", outcome="error") == 1
    assert value(after, "graph_operations_total", operation="other", outcome="ok") == 1
    assert value(after, "graph_operations_total", operation="anonymous", outcome="ok") == 1
    assert value(after, "graph_operation_duration_seconds_count", operation="Status") == 5
    assert value(after, "graph_operation_errors_total", code="ALIPAY_BUSINESS_ERROR") == 1

    method = "alipay.open.mini.version.detail.query"
    assert value(after, "graph_gateway_calls_total", method=method, outcome="success", attempt="1") == 2
    assert value(after, "graph_gateway_calls_total", method=method, outcome="unavailable", attempt="1") == 1
    assert value(after, "graph_gateway_calls_total", method=method, outcome="unavailable", attempt="2") == 1
    assert value(after, "graph_gateway_calls_total", method=method, outcome="success", attempt="3") == 1
    assert value(after, "graph_gateway_calls_total", method=method, outcome="business_error", attempt="1") == 1
    assert len(sandbox.calls) == 6  # the metrics count what the gateway saw
    assert value(after, "graph_gateway_call_duration_seconds_count", method=method, outcome="success") == 3

    gateway, response = {"cache": "gateway", "backend": "memory"}, {"cache": "response", "backend": "memory"}
    assert value(after, "graph_cache_lookups_total", **gateway, result="hit") == 2
    assert value(after, "graph_cache_lookups_total", **gateway, result="miss") == 4
    assert value(after, "graph_cache_errors_total", **gateway, operation="get") == 0
    assert value(after, "graph_cache_entries", cache="gateway") == 4  # two tenants' 0.0.1, 0.0.2, a business error
    assert value(after, "graph_cache_lookups_total", **response, result="hit") == 1
    assert value(after, "graph_cache_lookups_total", **response, result="miss") == 6
    assert value(after, "graph_http_requests_total", route="/graphql", status="200") == 7
    assert value(after, "graph_http_requests_total", route="/metrics", status="200") == 1  # the first scrape

    # Nothing a caller chose beyond the allow-list, and nothing secret, becomes part of the exposition.
    for absent in ("Dashboard", "0.0.1", "9.9.9", MERCHANT_TOKEN, "com.alipay.alipaywallet", "app_auth_token"):
        assert absent not in text


async def test_in_flight_gauges_and_single_flight_joins(graph_url: str, sandbox: SandboxGateway) -> None:
    sandbox.latency_s = 0.5
    async with httpx.AsyncClient(base_url=graph_url, timeout=20) as http:
        slow = [asyncio.create_task(ask(http, NAMED)) for _ in range(3)]
        for _ in range(1000):  # until the one gateway call is under way
            if sandbox.in_flight:
                break
            await asyncio.sleep(0.01)
        during, _, _ = await scrape(graph_url)
        await asyncio.gather(*slow)
    after, _, _ = await scrape(graph_url)
    assert value(during, "graph_http_requests_in_flight") == 4  # three queries and the scrape itself
    assert value(during, "graph_gateway_calls_in_flight") == 1
    assert value(during, "graph_singleflight_in_flight") == 1
    assert value(after, "graph_http_requests_in_flight") == 1
    assert value(after, "graph_gateway_calls_in_flight") == 0
    assert value(after, "graph_singleflight_joined_total") == 2  # two callers shared the first one's call
    assert len(sandbox.calls) == 1


async def test_metrics_need_no_api_key_and_count_refusals(start_app: Callable[..., str]) -> None:
    url = start_app(allow_anonymous=False, api_keys=frozenset({"scrape-test-key"}))
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        assert (await http.post("/graphql", json={"query": NAMED})).status_code == 401
        assert (await http.get("/nowhere")).status_code == 404
    samples, _, text = await scrape(url)
    assert value(samples, "graph_http_requests_total", route="/graphql", status="401") == 1
    assert value(samples, "graph_http_requests_total", route="other", status="404") == 1
    assert "scrape-test-key" not in text
    assert "/nowhere" not in text


async def test_each_app_has_its_own_registry(start_app: Callable[..., str], sandbox: SandboxGateway) -> None:
    one, two = start_app(), start_app()
    async with httpx.AsyncClient(base_url=one, timeout=10) as http:
        await ask(http, NAMED)
    first, _, _ = await scrape(one)
    second, _, _ = await scrape(two)
    assert value(first, "graph_operations_total", operation="other", outcome="ok") == 1
    assert value(second, "graph_operations_total", operation="other", outcome="ok") == 0


def test_circuit_breaker_state_hook() -> None:
    # Where a circuit breaker reports its state changes; until one exists the state stays closed.
    telemetry = Telemetry(Metrics())
    telemetry.breaker("open")
    samples, _ = parse(telemetry.metrics.exposition().decode())
    assert value(samples, "graph_circuit_breaker_state", graph_circuit_breaker_state="open") == 1
    assert value(samples, "graph_circuit_breaker_state", graph_circuit_breaker_state="closed") == 0
    with pytest.raises(ValueError, match="unknown circuit breaker state"):
        telemetry.breaker("ajar")


def test_labels_are_bounded() -> None:
    metrics = Metrics(operations={"Release"})
    assert [metrics.operation_label(n) for n in ("Release", "release", None)] == ["Release", "other", "anonymous"]
    assert [route_label(p) for p in ("/graphql", "/metrics", "/graphql/", "/x")] == [
        "/graphql",
        "/metrics",
        "other",
        "other",
    ]
    assert [error_code_label(c) for c in ("ALIPAY_UNAVAILABLE", "MADE_UP", None, 7)] == [
        "ALIPAY_UNAVAILABLE",
        "other",
        "other",
        "other",
    ]
    assert outcome_of(GatewayError("base")) == "error"


async def test_a_client_gone_before_its_answer_is_499_not_a_server_error(
    graph_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    import socket
    from urllib.parse import urlsplit

    host, port = urlsplit(graph_url).hostname, urlsplit(graph_url).port
    assert host is not None
    assert port is not None
    with caplog.at_level("INFO", logger="graph.http"), socket.create_connection((host, port)) as conn:
        # Half a body, then gone: the edge reads a disconnect and answers nothing.
        conn.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        conn.shutdown(socket.SHUT_WR)
        conn.recv(1024)
    for _ in range(50):  # the server notices the close on its own time
        samples, _, _ = await scrape(graph_url)
        if value(samples, "graph_http_requests_total", route="/graphql", status="499") == 1:
            break
        await asyncio.sleep(0.02)
    assert value(samples, "graph_http_requests_total", route="/graphql", status="499") == 1
    assert value(samples, "graph_http_requests_total", route="/graphql", status="500") == 0
    lines = [vars(record) for record in caplog.records if record.getMessage() == "request"]
    [line] = [line for line in lines if line["path"] == "/graphql"]
    assert (line["status"], line["outcome"]) == (499, "refused")
