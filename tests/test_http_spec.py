"""/graphql as GraphQL over HTTP specifies it, each rule over real HTTP.

- Accept: ``application/graphql-response+json`` whenever the caller accepts it with a q not lower than
  ``application/json``'s; ``application/json`` otherwise (``*/*``, ``application/*``, no Accept); 406 when neither.
- Status: under ``application/graphql-response+json`` a request error (syntax, validation, unknown or missing
  operation name, bad variables) is a 400; under ``application/json`` a 200. Either way its body has ``errors`` and
  no ``data`` key. An execution error (the gateway's) is a 200 with ``data``.
- Parameters: ``query`` and ``operationName`` strings, ``variables`` and ``extensions`` objects (or absent/null),
  else 400; a POST's body is JSON only under ``Content-Type: application/json`` (any case, any parameters), else
  415; a mutation by GET is a 405 with ``Allow: POST``; a GET parameter given twice is a 400 and nothing of it is
  cached; a JSON key given twice is refused or answered consistently.
- The GraphiQL page only for a browser's navigation (Accept text/html, no query); otherwise a GET without a query
  is a 400 in JSON.
- GET answers carry ``Cache-Control`` (``private, max-age=N`` or ``no-store``) and ``Vary`` naming the request
  headers the answer depends on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import pytest

from graph.sandbox import Fault, SandboxGateway
from tests.node import APQ_DIR, APQ_PACKAGES, missing_node, require_node, run_node

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
DEFAULT = "com.alipay.alipaywallet"
AMAP = "com.amap.app"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
TYPENAME = "{ __typename }"
STATUS = "query Status($v: String!) { miniAppVersion(appVersion: $v) { appVersion bundleId status } }"
COLD_CALLS = 1  # one miniAppVersion field, nothing cached: one gateway call

Fields = dict[str, Any]


# --- helpers -------------------------------------------------------------------------------------------------


def encoded(pairs: Sequence[tuple[str, Any]]) -> list[tuple[str, str | int | float | bool | None]]:
    """GET parameters: strings as they are, anything else as JSON."""
    return [(name, value if isinstance(value, str) else json.dumps(value)) for name, value in pairs]


async def send(
    url: str,
    method: str,
    fields: Fields | Sequence[tuple[str, Any]],
    *,
    accept: str | None = "*/*",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """One request to /graphql: ``fields`` as GET parameters or as a JSON body; ``accept=None`` sends no Accept."""
    pairs = list(fields.items()) if isinstance(fields, dict) else list(fields)
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        if method == "GET":
            built = http.build_request("GET", "/graphql", params=encoded(pairs), headers=headers)
        else:
            built = http.build_request("POST", "/graphql", json=dict(pairs), headers=headers)
        if accept is None:
            del built.headers["accept"]
        else:
            built.headers["accept"] = accept
        return await http.send(built)


async def post_raw(url: str, body: bytes, content_type: str | None = JSON, accept: str = "*/*") -> httpx.Response:
    headers = {"Accept": accept} | ({"Content-Type": content_type} if content_type is not None else {})
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        return await http.post("/graphql", content=body, headers=headers)


def content_type(response: httpx.Response) -> tuple[str, dict[str, str]]:
    """The media type and its parameters, lower-cased."""
    media, *rest = (part.strip() for part in response.headers.get("content-type", "").split(";"))
    params: dict[str, str] = {}
    for part in rest:
        name, _, value = part.partition("=")
        params[name.strip().lower()] = value.strip().strip('"').lower()
    return media.lower(), params


def assert_media_type(response: httpx.Response, expected: str) -> None:
    media, params = content_type(response)
    assert media == expected, response.headers.get("content-type")
    if expected == GRAPHQL_RESPONSE:
        assert params.get("charset") == "utf-8", response.headers.get("content-type")
    else:
        assert params.get("charset", "utf-8") == "utf-8", response.headers.get("content-type")


def refused(response: httpx.Response, status: int) -> list[dict[str, Any]]:
    """An HTTP-level refusal: the status, a JSON body (either JSON media type) with errors and no data."""
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert content_type(response)[0] in (JSON, GRAPHQL_RESPONSE), response.headers.get("content-type")
    body = response.json()
    assert isinstance(body, dict)
    assert "data" not in body, body
    errors: list[dict[str, Any]] = body["errors"]
    assert errors, body
    assert all(isinstance(error.get("message"), str) and error["message"] for error in errors), errors
    return errors


def version_of(response: httpx.Response) -> tuple[str, str]:
    node = response.json()["data"]["miniAppVersion"]
    return str(node["appVersion"]), str(node["bundleId"])


def hit(response: httpx.Response) -> bool:
    return bool(response.headers.get("x-response-cache") == "hit")


def vary(response: httpx.Response) -> set[str]:
    return {name.strip().lower() for name in response.headers.get("vary", "").split(",") if name.strip()}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def persisted(query: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha(query)}}


# --- Accept --------------------------------------------------------------------------------------------------

ACCEPTED: list[tuple[str | None, str]] = [
    (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
    (JSON, JSON),
    ("*/*", JSON),
    (None, JSON),
    ("application/*", JSON),
    (f"{GRAPHQL_RESPONSE}, {JSON};q=0.9", GRAPHQL_RESPONSE),
    (f"{GRAPHQL_RESPONSE},{JSON};q=0.9", GRAPHQL_RESPONSE),  # Apollo Client 4's default, byte for byte
    (f"{JSON}, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),  # equal q: the client accepts it, so it gets it
    (f"{GRAPHQL_RESPONSE};q=0.5, {JSON}", JSON),  # the client prefers application/json
    (f"{JSON};charset=utf-8", JSON),
    (f"{GRAPHQL_RESPONSE};charset=utf-8", GRAPHQL_RESPONSE),
]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(("accept", "expected"), ACCEPTED, ids=[str(a) for a, _ in ACCEPTED])
async def test_accept_chooses_the_media_type(
    shared_graph_url: str, method: str, accept: str | None, expected: str
) -> None:
    # Run in sequence on one service, so most of these are response-cache hits: a hit is negotiated like the rest.
    response = await send(shared_graph_url, method, {"query": TYPENAME}, accept=accept)
    assert response.status_code == 200, response.text
    assert_media_type(response, expected)
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("accept", ["text/plain", "application/xml", "image/png, text/plain;q=0.5"])
async def test_an_unacceptable_accept_is_406_before_anything_runs(
    graph_url: str, sandbox: SandboxGateway, method: str, accept: str
) -> None:
    response = await send(graph_url, method, {"query": STATUS, "variables": {"v": "0.0.1"}}, accept=accept)
    refused(response, 406)
    assert sandbox.received == 0


# --- status codes: request errors and execution errors ----------------------------------------------------------

TWO_OPERATIONS = "query One { __typename } query Two { __typename }"
REQUEST_ERRORS: list[tuple[str, Fields]] = [
    ("syntax error", {"query": "{ miniAppVersion("}),
    ("unknown field", {"query": "{ nope }"}),
    ("unknown operationName", {"query": "query A { __typename }", "operationName": "B"}),
    ("variable of the wrong type", {"query": STATUS, "variables": {"v": 5}}),
    ("missing variable", {"query": STATUS, "variables": {}}),
    # GraphQL's GetOperation: without a name, a document of two operations names none of them.
    ("two operations, no operationName", {"query": TWO_OPERATIONS}),
]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(("accept", "status"), [(GRAPHQL_RESPONSE, 400), (JSON, 200)])
@pytest.mark.parametrize(("name", "fields"), REQUEST_ERRORS, ids=[name for name, _ in REQUEST_ERRORS])
async def test_request_errors_are_400_under_graphql_response_json_and_200_under_json(
    shared_graph_url: str, sandbox: SandboxGateway, method: str, accept: str, status: int, name: str, fields: Fields
) -> None:
    response = await send(shared_graph_url, method, fields, accept=accept)
    assert response.status_code == status, response.text
    assert_media_type(response, accept)
    body = response.json()
    assert "data" not in body, body  # a request error never began to execute: no data key at all
    assert body["errors"]
    assert sandbox.received == 0


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, JSON])
async def test_an_execution_error_keeps_200_and_data(
    shared_graph_url: str, method: str, accept: str, sandbox: SandboxGateway
) -> None:
    response = await send(shared_graph_url, method, {"query": STATUS, "variables": {"v": "9.9.9"}}, accept=accept)
    assert response.status_code == 200, response.text
    assert_media_type(response, accept)
    body = response.json()
    assert body["data"] == {"miniAppVersion": None}
    assert body["errors"][0]["extensions"]["code"] == "ALIPAY_BUSINESS_ERROR"


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, JSON])
async def test_a_gateway_fault_is_an_execution_error(graph_url: str, sandbox: SandboxGateway, accept: str) -> None:
    sandbox.fail_next(Fault.BUSY, times=3)  # the first try and both retries
    response = await send(graph_url, "POST", {"query": STATUS, "variables": {"v": "0.0.1"}}, accept=accept)
    assert response.status_code == 200, response.text
    assert_media_type(response, accept)
    body = response.json()
    assert body["data"] == {"miniAppVersion": None}
    assert body["errors"][0]["extensions"]["code"] == "ALIPAY_UNAVAILABLE"


SAME_BY_GET_AND_POST: list[tuple[str, Fields]] = [
    *REQUEST_ERRORS,
    ("two operations, one chosen", {"query": TWO_OPERATIONS, "operationName": "Two"}),
    ("business error", {"query": STATUS, "variables": {"v": "9.9.9"}}),
]


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, JSON])
@pytest.mark.parametrize(("name", "fields"), SAME_BY_GET_AND_POST, ids=[name for name, _ in SAME_BY_GET_AND_POST])
async def test_get_and_post_of_one_request_get_one_answer(
    shared_graph_url: str, accept: str, name: str, fields: Fields
) -> None:
    by_get = await send(shared_graph_url, "GET", fields, accept=accept)
    by_post = await send(shared_graph_url, "POST", fields, accept=accept)
    assert by_get.status_code == by_post.status_code
    assert by_get.headers["content-type"] == by_post.headers["content-type"]
    get_body, post_body = by_get.json(), by_post.json()
    get_body.pop("extensions", None)
    post_body.pop("extensions", None)
    assert get_body == post_body


# --- the request's parameters ------------------------------------------------------------------------------

BAD_POST_FIELDS: list[tuple[str, Any]] = [
    ("extensions", 0),
    ("extensions", False),
    ("extensions", "x"),
    ("extensions", ""),
    ("extensions", []),
    ("variables", 1),
    ("variables", 0),
    ("variables", "x"),
    ("variables", []),
    ("query", 1),
    ("query", []),
    ("query", {}),
    ("operationName", 1),
    ("operationName", False),
    ("operationName", []),
    ("operationName", {}),
]


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, JSON])
@pytest.mark.parametrize(("name", "value"), BAD_POST_FIELDS, ids=[f"{n}={v!r}" for n, v in BAD_POST_FIELDS])
async def test_a_parameter_of_the_wrong_type_is_400(
    shared_graph_url: str, sandbox: SandboxGateway, accept: str, name: str, value: Any
) -> None:
    fields: Fields = {"query": TYPENAME, name: value}
    refused(await send(shared_graph_url, "POST", fields, accept=accept), 400)
    assert sandbox.received == 0


BAD_GET_PARAMS: list[tuple[str, str]] = [
    ("extensions", "not-json"),
    ("extensions", "[]"),
    ("extensions", "0"),
    ("extensions", '"x"'),
    ("variables", "[1]"),
    ("variables", "1"),
    ("variables", "{bad"),
    ("variables", '"x"'),
]


@pytest.mark.parametrize("accept", ["*/*", JSON, GRAPHQL_RESPONSE, BROWSER])
@pytest.mark.parametrize(("name", "value"), BAD_GET_PARAMS, ids=[f"{n}={v}" for n, v in BAD_GET_PARAMS])
async def test_a_get_parameter_that_is_not_a_json_object_is_400_json(
    shared_graph_url: str, accept: str, name: str, value: str
) -> None:
    # Never the GraphiQL page: the request carries a query, so it is an operation, even from a browser.
    refused(await send(shared_graph_url, "GET", [("query", TYPENAME), (name, value)], accept=accept), 400)


# --- the GraphiQL page -------------------------------------------------------------------------------------


@pytest.mark.parametrize("accept", [BROWSER, "text/html"])
async def test_the_playground_is_for_a_browsers_navigation(shared_graph_url: str, accept: str) -> None:
    page = await send(shared_graph_url, "GET", {}, accept=accept)
    assert page.status_code == 200
    assert content_type(page)[0] == "text/html"


@pytest.mark.parametrize("accept", ["*/*", None, JSON, GRAPHQL_RESPONSE, "application/*"])
async def test_a_get_without_a_query_from_anything_else_is_400_json(shared_graph_url: str, accept: str | None) -> None:
    refused(await send(shared_graph_url, "GET", {}, accept=accept), 400)


async def test_html_alone_with_a_query_is_406(shared_graph_url: str) -> None:
    # Not a navigation (it carries a query), and it accepts neither JSON type: the spec's 406.
    refused(await send(shared_graph_url, "GET", {"query": TYPENAME}, accept="text/html"), 406)


@pytest.mark.parametrize("accept", [BROWSER])
async def test_a_browser_get_with_a_query_gets_the_answer_not_the_page(shared_graph_url: str, accept: str) -> None:
    answer = await send(shared_graph_url, "GET", {"query": TYPENAME}, accept=accept)
    assert answer.status_code == 200
    assert content_type(answer)[0] in (JSON, GRAPHQL_RESPONSE), answer.headers.get("content-type")
    assert answer.json() == {"data": {"__typename": "Query"}}


# --- Content-Type of a POST --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        "APPLICATION/JSON; charset=utf-8",
        "Application/Json ; charset=utf-8",
    ],
)
async def test_application_json_in_any_case_with_parameters_is_json(shared_graph_url: str, header: str) -> None:
    answer = await post_raw(shared_graph_url, json.dumps({"query": TYPENAME}).encode(), header)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(
    "header",
    [
        "application/jsonx",
        "application/json-patch+json",
        "text/plain",
        "application/graphql",
        None,
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
    ],
)
async def test_any_other_content_type_is_415(
    shared_graph_url: str, sandbox: SandboxGateway, header: str | None
) -> None:
    refused(await post_raw(shared_graph_url, json.dumps({"query": TYPENAME}).encode(), header), 415)
    assert sandbox.received == 0


# --- GET is for queries ------------------------------------------------------------------------------------

GET_MUTATIONS: list[tuple[str, Fields]] = [
    ("anonymous mutation", {"query": "mutation { x }"}),
    ("named mutation", {"query": "mutation M { x }"}),
    ("the mutation chosen", {"query": "query A { __typename } mutation B { x }", "operationName": "B"}),
]


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE])
@pytest.mark.parametrize(("name", "fields"), GET_MUTATIONS, ids=[name for name, _ in GET_MUTATIONS])
async def test_a_mutation_by_get_is_405_allow_post(
    shared_graph_url: str, sandbox: SandboxGateway, accept: str, name: str, fields: Fields
) -> None:
    # GraphQL over HTTP: a GET whose query and operationName select a mutation is a 405 (the operation's type is
    # read from the document; that this schema has no mutation type at all does not matter).
    response = await send(shared_graph_url, "GET", fields, accept=accept)
    refused(response, 405)
    assert {method.strip() for method in response.headers.get("allow", "").split(",")} == {"POST"}
    assert sandbox.received == 0


async def test_a_query_chosen_beside_a_mutation_by_get_is_not_405(shared_graph_url: str) -> None:
    # The query A is what would run; the document as a whole is invalid here (no mutation type): a request error.
    fields = {"query": "query A { __typename } mutation B { x }", "operationName": "A"}
    response = await send(shared_graph_url, "GET", fields, accept=JSON)
    assert response.status_code == 200, response.text
    assert "data" not in response.json()
    assert response.json()["errors"]


# --- HTTP caching of GET answers ---------------------------------------------------------------------------

VARY = {"authorization", "x-alipay-app-auth-token", "accept"}


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE])
@pytest.mark.parametrize(
    "fields",
    [{"query": STATUS, "variables": {"v": "0.0.2"}}, {"query": TYPENAME}],
    ids=["gateway answer", "no gateway answer"],
)
async def test_a_plain_get_answer_that_may_be_reused_says_for_how_long(
    shared_graph_url: str, accept: str, fields: Fields
) -> None:
    for _ in range(2):  # fresh, then from the response cache
        answer = await send(shared_graph_url, "GET", fields, accept=accept)
        assert answer.status_code == 200
        cache_control = answer.headers.get("cache-control", "")
        assert cache_control.startswith("private, max-age="), cache_control
        assert 0 < int(cache_control.removeprefix("private, max-age=")) <= 60  # GRAPH_CACHE_TTL_S by default
        assert vary(answer) >= VARY, answer.headers.get("vary")


@pytest.mark.parametrize(
    "fields",
    [{"query": "{ nope }"}, {"query": STATUS, "variables": {"v": 5}}, {"query": STATUS, "variables": {"v": ""}}],
    ids=["validation error", "variable of the wrong type", "bad user input"],
)
async def test_a_plain_get_answer_that_may_not_be_reused_is_no_store(shared_graph_url: str, fields: Fields) -> None:
    answer = await send(shared_graph_url, "GET", fields, accept=JSON)
    assert answer.status_code == 200
    assert answer.headers.get("cache-control") == "no-store"
    assert vary(answer) >= VARY, answer.headers.get("vary")


async def test_a_get_answer_with_a_transient_failure_is_no_store(graph_url: str, sandbox: SandboxGateway) -> None:
    sandbox.fail_next(Fault.BUSY, times=3)
    answer = await send(graph_url, "GET", {"query": STATUS, "variables": {"v": "0.0.1"}}, accept=JSON)
    assert answer.json()["errors"][0]["extensions"]["code"] == "ALIPAY_UNAVAILABLE"
    assert answer.headers.get("cache-control") == "no-store"


# --- parameters given twice ----------------------------------------------------------------------------------

QUERY_A = '{ miniAppVersion(appVersion: "0.0.1") { appVersion bundleId status } }'
QUERY_B = '{ miniAppVersion(appVersion: "0.1.0", bundleId: "com.amap.app") { appVersion bundleId status } }'
CHOICE = (
    'query A { miniAppVersion(appVersion: "0.0.1") { appVersion bundleId status } } '
    'query B { miniAppVersion(appVersion: "0.1.0", bundleId: "com.amap.app") { appVersion bundleId status } }'
)
PERSISTED_A = "query PA($v: String!) { miniAppVersion(appVersion: $v) { appVersion bundleId status } }"
PERSISTED_B = (
    'query PB($v: String!) { miniAppVersion(appVersion: $v, bundleId: "com.amap.app") { appVersion bundleId status } }'
)

# (parameter, request A, request B, A's (appVersion, bundleId), B's): A and B differ in that parameter only.
TWICE: list[tuple[str, Fields, Fields, tuple[str, str], tuple[str, str]]] = [
    ("query", {"query": QUERY_A}, {"query": QUERY_B}, ("0.0.1", DEFAULT), ("0.1.0", AMAP)),
    (
        "variables",
        {"query": STATUS, "variables": {"v": "0.0.1"}},
        {"query": STATUS, "variables": {"v": "0.1.0"}},
        ("0.0.1", DEFAULT),
        ("0.1.0", DEFAULT),
    ),
    (
        "operationName",
        {"query": CHOICE, "operationName": "A"},
        {"query": CHOICE, "operationName": "B"},
        ("0.0.1", DEFAULT),
        ("0.1.0", AMAP),
    ),
    (
        "extensions",  # hash-only persisted queries, both documents registered beforehand
        {"variables": {"v": "0.0.1"}, "extensions": persisted(PERSISTED_A)},
        {"variables": {"v": "0.0.1"}, "extensions": persisted(PERSISTED_B)},
        ("0.0.1", DEFAULT),
        ("0.0.1", AMAP),
    ),
]


def twice(name: str, a: Fields, b: Fields) -> list[tuple[str, Any]]:
    """A's parameters, with ``name`` given twice: A's value, then B's."""
    pairs: list[tuple[str, Any]] = []
    for key, value in a.items():
        pairs.append((key, value))
        if key == name:
            pairs.append((key, b[key]))
    return pairs


async def register_both(url: str) -> None:
    """Register the persisted documents of TWICE's ``extensions`` case, run with another version: the documents
    are known afterwards, no 0.0.1 answer is cached."""
    for document in (PERSISTED_A, PERSISTED_B):
        body = {"query": document, "variables": {"v": "1.0.0"}, "extensions": persisted(document)}
        assert (await send(url, "POST", body)).status_code == 200


@pytest.mark.parametrize("then", ["GET", "POST"])
@pytest.mark.parametrize(("name", "a", "b", "expected_a", "expected_b"), TWICE, ids=[t[0] for t in TWICE])
async def test_a_get_parameter_given_twice_is_400_and_nothing_is_cached(
    start_app: Callable[..., str],
    sandbox: SandboxGateway,
    then: str,
    name: str,
    a: Fields,
    b: Fields,
    expected_a: tuple[str, str],
    expected_b: tuple[str, str],
) -> None:
    url = start_app()
    if name == "extensions":
        await register_both(url)
    before = len(sandbox.calls)
    for pairs in (twice(name, a, b), twice(name, b, a)):
        refused(await send(url, "GET", pairs, accept=JSON), 400)
    assert len(sandbox.calls) == before  # refused before anything ran
    # Nothing was stored under A's (or B's) key: each is answered as cold, with its own data.
    for fields, expected in ((a, expected_a), (b, expected_b)):
        before = len(sandbox.calls)
        answer = await send(url, then, fields, accept=JSON)
        assert answer.status_code == 200, answer.text
        assert version_of(answer) == expected
        assert not hit(answer)
        assert len(sandbox.calls) - before == COLD_CALLS


# (case, raw body with a key given twice, request A, request B, A's (appVersion, bundleId), B's)
JSON_TWICE: list[tuple[str, bytes, Fields, Fields, tuple[str, str], tuple[str, str]]] = [
    (
        "query",
        b'{"query": %s, "query": %s}' % (json.dumps(QUERY_A).encode(), json.dumps(QUERY_B).encode()),
        {"query": QUERY_A},
        {"query": QUERY_B},
        ("0.0.1", DEFAULT),
        ("0.1.0", AMAP),
    ),
    (
        "variables",
        b'{"query": %s, "variables": {"v": "0.0.1"}, "variables": {"v": "0.1.0"}}' % json.dumps(STATUS).encode(),
        {"query": STATUS, "variables": {"v": "0.0.1"}},
        {"query": STATUS, "variables": {"v": "0.1.0"}},
        ("0.0.1", DEFAULT),
        ("0.1.0", DEFAULT),
    ),
    (
        "operationName",
        b'{"query": %s, "operationName": "A", "operationName": "B"}' % json.dumps(CHOICE).encode(),
        {"query": CHOICE, "operationName": "A"},
        {"query": CHOICE, "operationName": "B"},
        ("0.0.1", DEFAULT),
        ("0.1.0", AMAP),
    ),
    (
        "a variable",
        b'{"query": %s, "variables": {"v": "0.0.1", "v": "0.1.0"}}' % json.dumps(STATUS).encode(),
        {"query": STATUS, "variables": {"v": "0.0.1"}},
        {"query": STATUS, "variables": {"v": "0.1.0"}},
        ("0.0.1", DEFAULT),
        ("0.1.0", DEFAULT),
    ),
]


@pytest.mark.parametrize(
    ("name", "raw", "a", "b", "expected_a", "expected_b"), JSON_TWICE, ids=[t[0] for t in JSON_TWICE]
)
async def test_a_json_key_given_twice_is_refused_or_answered_consistently(
    start_app: Callable[..., str],
    sandbox: SandboxGateway,
    name: str,
    raw: bytes,
    a: Fields,
    b: Fields,
    expected_a: tuple[str, str],
    expected_b: tuple[str, str],
) -> None:
    url = start_app()
    first = await post_raw(url, raw)
    if first.status_code == 400:
        refused(first, 400)
        assert sandbox.calls == []
    else:
        assert first.status_code == 200, first.text
        ran = version_of(first)
        assert ran in (expected_a, expected_b)
        again = await post_raw(url, raw)  # maybe from the response cache: the same answer
        assert again.status_code == 200
        assert version_of(again) == ran
    # Whatever ran, and whatever was stored, A gets A's data and B gets B's, by either method, in either order.
    for method in ("POST", "GET", "POST"):
        for fields, expected in ((a, expected_a), (b, expected_b)):
            answer = await send(url, method, fields, accept=JSON)
            assert answer.status_code == 200, answer.text
            assert version_of(answer) == expected, (method, fields)


# --- Apollo Client 4 -----------------------------------------------------------------------------------------

APOLLO_ACCEPT = "application/graphql-response+json,application/json;q=0.9"  # fallbackHttpConfig's headers.accept


def test_apollo_client_4_gets_graphql_response_json(shared_graph_url: str) -> None:
    require_node(reason=missing_node(APQ_DIR, packages=APQ_PACKAGES))
    done = run_node(APQ_DIR, "accept.mjs", f"{shared_graph_url}/graphql")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    answered, invalid = out["exchanges"]
    assert answered["accept"] == APOLLO_ACCEPT  # what HttpLink sends unless told otherwise
    assert answered["status"] == 200
    assert answered["contentType"].replace(" ", "").lower() == f"{GRAPHQL_RESPONSE};charset=utf-8"
    assert out["results"][0]["data"]["miniAppVersion"] == {
        "__typename": "MiniAppVersion",
        "appVersion": "0.0.1",
        "status": "RELEASE",
    }
    # A request error: 400 under graphql-response+json, which Apollo Client reads as GraphQL errors (not a
    # ServerError, as it would a 400 in application/json).
    assert invalid["status"] == 400
    assert invalid["contentType"].replace(" ", "").lower() == f"{GRAPHQL_RESPONSE};charset=utf-8"
    assert "data" not in json.loads(invalid["text"])
    assert out["results"][1]["error"]["name"] == "CombinedGraphQLErrors"
