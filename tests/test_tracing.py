"""Spans through the OpenTelemetry SDK's in-memory exporter: the tree of one request, the caller's trace id."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from graph.app import create_app
from graph.config import Settings
from graph.sandbox import Fault, SandboxGateway
from tests.servers import serve

ROOT = Path(__file__).resolve().parent.parent
RELEASE = """
query Release { a: miniAppVersion(appVersion: "0.0.1") { status } b: miniAppVersion(appVersion: "0.0.2") { status } }
"""
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


async def finished(exporter: InMemorySpanExporter, name: str, count: int = 1) -> list[ReadableSpan]:
    # The server span ends just after the response's last byte is sent: the client may see it first.
    for _ in range(200):
        spans = list(exporter.get_finished_spans())
        if sum(span.name == name for span in spans) >= count:
            return spans
        await asyncio.sleep(0.01)
    raise AssertionError(f"no finished span {name!r}")


def named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def cache_lookups(spans: list[ReadableSpan], cache: str) -> list[ReadableSpan]:
    return [span for span in named(spans, "cache.get") if span.attributes and span.attributes["cache.name"] == cache]


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


async def test_one_request_is_one_trace_with_the_callers_trace_id(
    settings: Settings, sandbox: SandboxGateway, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    sandbox.fail_next(Fault.BUSY, times=1, app_version="0.0.2")
    with serve(create_app(settings, tracer_provider=provider), lifespan="on") as url:
        async with httpx.AsyncClient(base_url=url, timeout=20) as http:
            response = await http.post(
                "/graphql", json={"query": RELEASE}, headers={"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"}
            )
        assert "errors" not in response.json()
        spans = await finished(exporter, "POST /graphql")

    assert {format(span.context.trace_id, "032x") for span in spans if span.context} == {TRACE_ID}
    [server] = named(spans, "POST /graphql")
    assert server.kind is SpanKind.SERVER
    assert parent_id(server) == int(PARENT_SPAN_ID, 16)
    assert server.parent is not None
    assert server.parent.is_remote
    assert server.attributes is not None
    assert server.attributes["http.response.status_code"] == 200

    [operation] = named(spans, "query Release")
    assert parent_id(operation) == span_id(server)
    assert operation.attributes is not None
    assert operation.attributes["graphql.operation.name"] == "Release"
    assert operation.attributes["graphql.outcome"] == "ok"
    assert "graphql.document" not in operation.attributes  # the query text is off unless configured

    [batch] = named(spans, "dataloader.batch")  # two aliases, one DataLoader batch
    assert parent_id(batch) == span_id(operation)
    assert batch.attributes is not None
    assert batch.attributes["batch.size"] == 2

    [whole] = cache_lookups(spans, "response")  # the whole-response cache, looked up before executing
    assert parent_id(whole) == span_id(server)
    assert whole.attributes is not None
    assert whole.attributes["cache.hit"] is False
    lookups = cache_lookups(spans, "gateway")
    assert len(lookups) == 2
    assert all(parent_id(span) == span_id(batch) for span in lookups)
    assert all(span.attributes is not None and span.attributes["cache.hit"] is False for span in lookups)

    attempts = named(spans, "alipay.gateway")
    assert len(attempts) == 3 == len(sandbox.calls)  # 0.0.1 once; 0.0.2 busy, then again
    assert all(parent_id(span) == span_id(batch) for span in attempts)
    outcomes = sorted(
        (span.attributes["alipay.attempt"], span.attributes["alipay.outcome"]) for span in attempts if span.attributes
    )
    assert outcomes == [(1, "success"), (1, "unavailable"), (2, "success")]
    [busy] = [span for span in attempts if span.status.status_code is StatusCode.ERROR]
    assert busy.attributes is not None
    assert busy.attributes["rpc.method"] == "alipay.open.mini.version.detail.query"

    # Nothing the caller sent beyond names and numbers is recorded.
    recorded = json.dumps([dict(span.attributes or {}) for span in spans])
    assert "0.0.2" not in recorded


async def test_cached_answers_and_new_traces(
    settings: Settings, sandbox: SandboxGateway, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    query = '{ miniAppVersion(appVersion: "0.0.1") { status } }'
    with serve(create_app(settings, tracer_provider=provider), lifespan="on") as url:
        async with httpx.AsyncClient(base_url=url, timeout=20) as http:
            await http.post("/graphql", json={"query": query})
            await finished(exporter, "POST /graphql")
            exporter.clear()
            # Another document for the same version: executed, its answer from the gateway-answer cache.
            other = '{ miniAppVersion(appVersion: "0.0.1") { appName } }'
            await http.post("/graphql", json={"query": other}, headers={"traceparent": "00-zz-bad-01"})
            spans = await finished(exporter, "POST /graphql")
            exporter.clear()
            await http.post("/graphql", json={"query": query})  # the first request again: a whole-response hit
            replayed = await finished(exporter, "POST /graphql")
    [server] = named(spans, "POST /graphql")
    assert server.parent is None  # a malformed traceparent starts a new trace
    [operation] = named(spans, "query")
    assert parent_id(operation) == span_id(server)
    [lookup] = cache_lookups(spans, "gateway")
    assert lookup.attributes is not None
    assert lookup.attributes["cache.hit"] is True
    assert named(spans, "alipay.gateway") == []
    # A replayed response executes nothing: the server span and the hit, no operation span.
    assert sorted(span.name for span in replayed) == ["POST /graphql", "cache.get"]
    [hit] = cache_lookups(replayed, "response")
    assert hit.attributes is not None
    assert hit.attributes["cache.hit"] is True


async def test_query_text_is_recorded_only_when_configured(
    settings: Settings, sandbox: SandboxGateway, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    with serve(create_app(replace(settings, trace_query_text=True), tracer_provider=provider), lifespan="on") as url:
        async with httpx.AsyncClient(base_url=url, timeout=20) as http:
            body = (await http.post("/graphql", json={"query": "query Broken { nope }"})).json()
        spans = await finished(exporter, "POST /graphql")
    assert body["errors"]
    [operation] = named(spans, "query Broken")  # parsed, then refused by validation
    assert operation.attributes is not None
    assert operation.attributes["graphql.document"] == "query Broken { nope }"
    assert operation.attributes["graphql.outcome"] == "error"
    assert operation.status.status_code is StatusCode.ERROR


def test_without_opentelemetry_the_service_runs_unchanged() -> None:
    # The otel extra uninstalled, as far as Python can tell: importing it fails.
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "from graph.observability import tracing\n"
        "assert not tracing.OTEL\n"
        "from graph.cli import main\n"
        "sys.exit(main(['query', '{ miniAppVersion(appVersion: \"0.0.1\") { status } }', '--demo']))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIPAY_", "GRAPH_"))}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    out: dict[str, Any] = json.loads(result.stdout)
    assert out["data"]["miniAppVersion"]["status"]
