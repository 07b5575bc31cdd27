"""Unexpected exceptions become INTERNAL_ERROR with a request id; errors meant for callers pass unchanged."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest
import strawberry

from graph.errors import BadUserInput
from graph.masking import MaskInternalErrors
from graph.schema import Schema


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
