"""Malformed requests get a 4xx with a JSON error, never a 5xx or plain text (Strawberry alone gives both)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from graph.sandbox import SandboxGateway

JSON = {"Content-Type": "application/json"}
TYPENAME = "{ __typename }"

# (name, method, httpx request arguments, status, code)
MALFORMED: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("bad JSON", "POST", {"content": b"{not json", "headers": JSON}, 400, "BAD_REQUEST"),
    ("JSON not UTF-8", "POST", {"content": b"\xff\xfe\x00{", "headers": JSON}, 400, "BAD_REQUEST"),
    ("empty body", "POST", {"content": b"", "headers": JSON}, 400, "BAD_REQUEST"),
    ("JSON string", "POST", {"content": b'"{ __typename }"', "headers": JSON}, 400, "BAD_REQUEST"),
    ("JSON number", "POST", {"content": b"5", "headers": JSON}, 400, "BAD_REQUEST"),
    ("JSON null", "POST", {"content": b"null", "headers": JSON}, 400, "BAD_REQUEST"),
    ("array of numbers", "POST", {"content": b"[1, 2]", "headers": JSON}, 400, "BAD_REQUEST"),
    ("batch while off", "POST", {"json": [{"query": TYPENAME}]}, 400, "BAD_REQUEST"),
    (
        "text/plain",
        "POST",
        {"content": TYPENAME.encode(), "headers": {"Content-Type": "text/plain"}},
        415,
        "BAD_REQUEST",
    ),
    ("no content type", "POST", {"content": b'{"query": "{ __typename }"}'}, 415, "BAD_REQUEST"),
    (
        "multipart (no python-multipart installed)",
        "POST",
        {"content": b"--x\r\n\r\n--x--\r\n", "headers": {"Content-Type": "multipart/form-data; boundary=x"}},
        415,
        "BAD_REQUEST",
    ),
    (
        "form-encoded",
        "POST",
        {"content": b"query=%7B__typename%7D", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
        415,
        "BAD_REQUEST",
    ),
    ("query a number", "POST", {"json": {"query": 5}}, 400, "BAD_REQUEST"),
    ("query an object", "POST", {"json": {"query": {"a": 1}}}, 400, "BAD_REQUEST"),
    ("variables a list", "POST", {"json": {"query": TYPENAME, "variables": [1]}}, 400, "BAD_REQUEST"),
    ("variables a string", "POST", {"json": {"query": TYPENAME, "variables": "{}"}}, 400, "BAD_REQUEST"),
    ("operationName a number", "POST", {"json": {"query": TYPENAME, "operationName": 5}}, 400, "BAD_REQUEST"),
    ("extensions a string", "POST", {"json": {"query": TYPENAME, "extensions": "x"}}, 400, "BAD_REQUEST"),
    ("no query", "POST", {"json": {"variables": {}}}, 400, "BAD_REQUEST"),
    ("empty query", "POST", {"json": {"query": ""}}, 400, "BAD_REQUEST"),
    ("GET mutation", "GET", {"params": {"query": "mutation { x }"}}, 405, "BAD_REQUEST"),
    ("POST subscription", "POST", {"json": {"query": "subscription { x }"}}, 400, "BAD_REQUEST"),
    ("GET bad variables JSON", "GET", {"params": {"query": TYPENAME, "variables": "{bad"}}, 400, "BAD_REQUEST"),
    ("GET variables a list", "GET", {"params": {"query": TYPENAME, "variables": "[1]"}}, 400, "BAD_REQUEST"),
    ("GET without a query", "GET", {"headers": {"Accept": "application/json"}}, 400, "BAD_REQUEST"),
    ("PUT", "PUT", {"json": {"query": TYPENAME}}, 405, "BAD_REQUEST"),
    ("DELETE", "DELETE", {}, 405, "BAD_REQUEST"),
    ("PATCH", "PATCH", {"json": {"query": TYPENAME}}, 405, "BAD_REQUEST"),
]

# GraphQL-level problems: HTTP 200 (the GraphQL-over-HTTP convention for application/json) with a coded error.
INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("unknown operation name", {"query": "query A { __typename }", "operationName": "B"}, "GRAPHQL_VALIDATION_FAILED"),
    ("mutation (the schema has none)", {"query": "mutation { x }"}, "GRAPHQL_VALIDATION_FAILED"),
    ("syntax error", {"query": "{ miniAppVersion("}, "GRAPHQL_PARSE_FAILED"),
    ("unknown field", {"query": "{ nope }"}, "GRAPHQL_VALIDATION_FAILED"),
    (
        "variable of the wrong type",
        {"query": "query($v: String!) { miniAppVersion(appVersion: $v) { status } }", "variables": {"v": 5}},
        "BAD_USER_INPUT",
    ),
    (
        "missing variable",
        {"query": "query($v: String!) { miniAppVersion(appVersion: $v) { status } }", "variables": {}},
        "BAD_USER_INPUT",
    ),
    (
        "null for a non-null variable",
        {"query": "query($v: String!) { miniAppVersion(appVersion: $v) { status } }", "variables": {"v": None}},
        "BAD_USER_INPUT",
    ),
]


@pytest.mark.parametrize(("name", "method", "request_args", "status", "code"), MALFORMED, ids=[m[0] for m in MALFORMED])
async def test_malformed_requests_get_a_json_4xx(
    shared_graph_url: str,
    sandbox: SandboxGateway,
    name: str,
    method: str,
    request_args: dict[str, Any],
    status: int,
    code: str,
) -> None:
    async with httpx.AsyncClient(base_url=shared_graph_url) as http:
        response = await http.request(method, "/graphql", **request_args)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == code
    assert error["message"]
    if status == 405:
        assert response.headers["allow"] == ("POST" if method == "GET" else "GET, POST")
    assert sandbox.received == 0


@pytest.mark.parametrize(("name", "body", "code"), INVALID, ids=[i[0] for i in INVALID])
async def test_invalid_operations_get_coded_errors_not_masks(
    shared_graph_url: str, sandbox: SandboxGateway, name: str, body: dict[str, Any], code: str
) -> None:
    async with httpx.AsyncClient(base_url=shared_graph_url) as http:
        response = await http.post("/graphql", json=body)
    assert response.status_code == 200
    assert "data" not in response.json()  # a request error: nothing ran
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == code
    assert error["message"] != "Internal error"
    assert sandbox.received == 0
