"""Unexpected exceptions become INTERNAL_ERROR with a request id; errors meant for callers pass unchanged."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import strawberry
from starlette.applications import Starlette
from starlette.routing import Route

from graph.config import Settings
from graph.errors import BadUserInput
from graph.execution.masking import MaskInternalErrors
from graph.execution.schema import Schema
from graph.http.edge import GraphQLEdge
from graph.observability.logs import JsonFormatter
from graph.observability.telemetry import RequestTelemetry, Telemetry
from graph.services import build_services
from tests.servers import serve


@dataclass
class FakeRequestContext:
    request_id: str = "req-42"


@strawberry.type
class Query:
    @strawberry.field
    def broken(self) -> str:
        raise RuntimeError("secret detail: key=abc")

    @strawberry.field
    def refused(self) -> str:
        raise BadUserInput("appVersion must not be empty", argumentName="appVersion")


SCHEMA = Schema(query=Query, extensions=[MaskInternalErrors])


async def test_unexpected_errors_are_masked_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="graph.errors"):
        result = await SCHEMA.execute("{ broken }", context_value=FakeRequestContext())
    assert result.errors is not None
    [error] = result.errors
    assert error.message == "Internal error"
    assert error.extensions == {"code": "INTERNAL_ERROR", "requestId": "req-42"}
    assert "secret detail" not in str(error.formatted)
    [record] = caplog.records
    assert record.request_id == "req-42"  # type: ignore[attr-defined]
    assert record.exc_info is not None


async def test_caller_errors_pass_and_are_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="graph.errors"):
        result = await SCHEMA.execute("{ refused }", context_value=FakeRequestContext())
        invalid = await SCHEMA.execute("{ nope }", context_value=FakeRequestContext())
    assert result.errors is not None
    assert result.errors[0].extensions == {"code": "BAD_USER_INPUT", "argumentName": "appVersion"}
    assert invalid.errors is not None
    assert "nope" in invalid.errors[0].message
    assert caplog.records == []


async def test_request_id_defaults_when_the_context_has_none() -> None:
    result = await SCHEMA.execute("{ broken }", context_value=object())
    assert result.errors is not None
    assert result.errors[0].extensions == {"code": "INTERNAL_ERROR", "requestId": "-"}


async def test_the_request_id_in_the_answer_is_the_one_in_the_log(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # The real edge (request ids, access) in front of a schema with a field that fails unexpectedly.
    telemetry = Telemetry()
    edge = GraphQLEdge(Schema(query=Query, extensions=[MaskInternalErrors]), settings, telemetry, page=None)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = build_services(settings)
        edge.start(services)
        yield
        await services.aclose()

    app = Starlette(routes=[Route("/graphql", edge)], lifespan=lifespan)
    app = RequestTelemetry(app, telemetry=telemetry)  # type: ignore[assignment]
    with serve(app, lifespan="on") as url, caplog.at_level(logging.ERROR, logger="graph.errors"):
        async with httpx.AsyncClient(base_url=url) as http:
            given = await http.post("/graphql", json={"query": "{ broken }"}, headers={"X-Request-Id": "req-7f3a"})
            made = await http.post("/graphql", json={"query": "{ broken }"})
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "graph.errors"]
    assert [line["message"] for line in lines] == ["unexpected error", "unexpected error"]
    for response, line in zip((given, made), lines, strict=True):
        [error] = response.json()["errors"]
        assert error["message"] == "Internal error"
        assert error["extensions"]["code"] == "INTERNAL_ERROR"
        assert error["extensions"]["requestId"] == response.headers["x-request-id"] == line["request_id"]
        assert "secret detail: key=abc" in line["exception"]  # the detail is in the log, never in the answer
        assert "secret detail" not in response.text
    assert lines[0]["request_id"] == "req-7f3a"
    assert len(lines[1]["request_id"]) == 32
