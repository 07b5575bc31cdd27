"""A differential property test of the /graphql edge: what is cached never changes an answer.

Two services on the one sandbox gateway: ``cached`` as deployed (the response cache and the gateway-answer cache
on), ``uncached`` with both lifetimes at 0, so it reuses nothing and runs every request from scratch. Hypothesis
generates requests (GET and POST; plain and persisted, text with hash and hash alone after registration, and hashes
never registered; aliases, variables, documents of two operations with one chosen, an unknown or missing name;
Accept values; GET parameters given twice) and sends each to ``cached`` twice (the second may be a hit) and to
``uncached`` once. The three answers must agree (status, media type, ``data`` and ``errors``; ``extensions.cacheAge``
and request ids aside), and the status and media type must be what GraphQL over HTTP says (tests/test_http_spec.py
pins each rule on its own).

The services live as long as the module, so an answer stored by one example is there for the next: a request that
poisons the cache under another request's key shows up as a disagreement later. Every failure message lists the
last requests sent.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import httpx
import pytest
from hypothesis import HealthCheck, given, note, settings, strategies as st

from graph.app import create_app
from graph.config import Settings
from graph.gateway.client import Credentials
from graph.sandbox import KNOWN_BUNDLE_IDS, SandboxGateway
from tests.servers import serve

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
EXAMPLES = 60
# On a failure Hypothesis's pytest plugin imports libcst (to offer an @example patch), whose import warns through
# mypy_extensions; with warnings as errors that would replace the failure's report with an INTERNALERROR.
pytestmark = pytest.mark.filterwarnings("ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")


class Services(NamedTuple):
    cached: httpx.Client
    uncached: httpx.Client


@pytest.fixture(scope="module")
def services(credentials: Credentials, _served_sandbox: tuple[SandboxGateway, str]) -> Iterator[Services]:
    base = Settings(
        credentials=credentials,
        gateway_url=_served_sandbox[1],
        allow_anonymous=True,
        timeout_s=2.0,
        rate_limit_per_min=0,
    )
    # Lifetimes of 0: no gateway answer and no whole response is ever stored (graph.cache refuses ttl <= 0).
    nothing_reused = replace(base, cache_ttl_s=0.0, cache_error_ttl_s=0.0)
    with (
        serve(create_app(base), lifespan="on") as cached_url,
        serve(create_app(nothing_reused), lifespan="on") as uncached_url,
        httpx.Client(base_url=cached_url, timeout=20) as cached,
        httpx.Client(base_url=uncached_url, timeout=20) as uncached,
    ):
        yield Services(cached, uncached)


# --- what a request asks --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    runs: bool  # False: a request error (the document or the variables are refused before execution)


FIELDS = ("appVersion", "bundleId", "status", "appName", "scanResult")
VERSIONS = ("0.0.1", "0.0.2", "0.1.0", "1.0.0", "1.1.0-beta", "9.9.9")  # 9.9.9 does not exist: a business error


@st.composite
def selections(draw: st.DrawFn) -> str:
    return " ".join(draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=3, unique=True)))


@st.composite
def version_fields(draw: st.DrawFn, alias: str | None = None, version: str | None = None) -> str:
    """One ``miniAppVersion`` field with literal arguments."""
    version = version or draw(st.sampled_from(VERSIONS))
    bundle = draw(st.none() | st.sampled_from(KNOWN_BUNDLE_IDS))
    arguments = f'appVersion: "{version}"' + (f', bundleId: "{bundle}"' if bundle else "")
    prefix = f"{alias}: " if alias else ""
    return f"{prefix}miniAppVersion({arguments}) {{ {draw(selections())} }}"


@st.composite
def with_variables(draw: st.DrawFn) -> Operation:
    name = draw(st.sampled_from(["", "Q", "Status"]))
    alias = draw(st.sampled_from(["", "a: ", "version: "]))
    bundle = draw(st.none() | st.sampled_from(KNOWN_BUNDLE_IDS))
    arguments = "appVersion: $v" + (f', bundleId: "{bundle}"' if bundle else "")
    query = f"query {name}($v: String!) {{ {alias}miniAppVersion({arguments}) {{ {draw(selections())} }} }}"
    version = draw(st.sampled_from(VERSIONS))
    choices: list[tuple[dict[str, Any], bool]] = [
        ({"v": version}, True),
        ({"v": version, "unused": 1}, True),  # variables the operation does not declare are ignored
        ({"v": 5}, False),
        ({}, False),
        ({"v": None}, False),
    ]
    variables, runs = draw(st.sampled_from(choices))
    return Operation(query, variables, draw(st.sampled_from([None, name or None])), runs)


@st.composite
def literal(draw: st.DrawFn) -> Operation:
    alias = draw(st.sampled_from([None, "a", "mini"]))
    return Operation(f"{{ {draw(version_fields(alias))} }}", None, None, True)


@st.composite
def two_fields(draw: st.DrawFn) -> Operation:
    query = f"{{ {draw(version_fields('a'))} {draw(version_fields('b'))} }}"
    return Operation(query, draw(st.sampled_from([None, {}])), None, True)


@st.composite
def two_operations(draw: st.DrawFn) -> Operation:
    query = f"query One {{ {draw(version_fields())} }} query Two {{ {draw(version_fields('two'))} }}"
    name = draw(st.sampled_from(["One", "Two", "Three", None]))
    return Operation(query, None, name, name in ("One", "Two"))  # unknown, or none for two: a request error


@st.composite
def others(draw: st.DrawFn) -> Operation:
    query, runs = draw(
        st.sampled_from(
            [
                ("{ __typename }", True),
                ("{ t: __typename }", True),
                ('{ miniAppVersion(appVersion: "") { status } }', True),  # BAD_USER_INPUT from the resolver: ran
                ("{ nope }", False),
                ("{ miniAppVersion(", False),
                ('{ miniAppVersion(appVersion: "0.0.1") { nope } }', False),
                ('{ a: miniAppVersion(appVersion: "0.0.1") { status } a: __typename }', False),  # a conflict
            ]
        )
    )
    return Operation(query, None, None, runs)


operations = st.one_of(with_variables(), literal(), two_fields(), two_operations(), others())

# --- how it is sent -------------------------------------------------------------------------------------------

ACCEPTS: tuple[str | None, ...] = (
    GRAPHQL_RESPONSE,
    JSON,
    "*/*",
    None,
    "application/*",
    f"{GRAPHQL_RESPONSE}, {JSON};q=0.9",
    f"{GRAPHQL_RESPONSE},{JSON};q=0.9",
    f"{JSON}, {GRAPHQL_RESPONSE}",
    f"{GRAPHQL_RESPONSE};q=0.5, {JSON}",
    "text/plain",
    "application/xml",
)
# For a GET parameter given twice: the other value.
OTHER_VALUES: dict[str, list[Any]] = {
    "query": ["{ __typename }", '{ miniAppVersion(appVersion: "0.0.2") { appVersion bundleId } }'],
    "variables": [{"v": "0.0.2"}, {}],
    "operationName": ["One", "Two"],
    "extensions": [{}, {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}],
}


@dataclass(frozen=True)
class Case:
    method: str
    accept: str | None
    operation: Operation
    apq: str  # "none", "both" (text and hash), "hash-only" (registered first), "unknown" (a hash never registered)
    twice: tuple[str, Any, bool] | None  # a GET parameter given twice: its name, the other value, other one first
    nonce: int  # makes an "unknown" hash unknown

    def fields(self) -> list[tuple[str, Any]]:
        op = self.operation
        fields: list[tuple[str, Any]] = []
        if self.apq in ("none", "both"):
            fields.append(("query", op.query))
        if op.variables is not None:
            fields.append(("variables", op.variables))
        if op.operation_name is not None:
            fields.append(("operationName", op.operation_name))
        if self.apq in ("both", "hash-only"):
            fields.append(("extensions", persisted(op.query)))
        elif self.apq == "unknown":
            fields.append(("extensions", persisted(f"# never registered {self.nonce}\n{op.query}")))
        if self.twice is None:
            return fields
        name, other, other_first = self.twice
        doubled: list[tuple[str, Any]] = []
        for key, value in fields:
            pair = [(key, value), (key, other)] if key == name else [(key, value)]
            doubled.extend(reversed(pair) if key == name and other_first else pair)
        return doubled


@st.composite
def cases(draw: st.DrawFn) -> Case:
    method = draw(st.sampled_from(["GET", "POST"]))
    operation = draw(operations)
    apq = draw(
        st.sampled_from(["none", "none", "both", "hash-only", "unknown"] if operation.runs else ["none", "both"])
    )
    case = Case(method, draw(st.sampled_from(ACCEPTS)), operation, apq, None, draw(st.integers(0, 2**32)))
    if method == "GET" and draw(st.integers(0, 4)) == 0:
        name = draw(st.sampled_from([key for key, _ in case.fields()]))
        other = draw(st.sampled_from(OTHER_VALUES[name]))
        case = replace(case, twice=(name, other, draw(st.booleans())))
    return case


def persisted(query: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(query.encode()).hexdigest()}}


def send(http: httpx.Client, case: Case) -> httpx.Response:
    fields = case.fields()
    if case.method == "GET":
        params: list[tuple[str, str | int | float | bool | None]] = [
            (key, value if isinstance(value, str) else json.dumps(value)) for key, value in fields
        ]
        request = http.build_request("GET", "/graphql", params=params)
    else:
        request = http.build_request("POST", "/graphql", json=dict(fields))
    if case.accept is None:
        del request.headers["accept"]
    else:
        request.headers["accept"] = case.accept
    return http.send(request)


def register(http: httpx.Client, operation: Operation) -> None:
    body: dict[str, Any] = {"query": operation.query, "extensions": persisted(operation.query)}
    if operation.variables is not None:
        body["variables"] = operation.variables
    if operation.operation_name is not None:
        body["operationName"] = operation.operation_name
    registered = http.post("/graphql", json=body)
    assert registered.status_code == 200, registered.text
    assert "data" in registered.json(), registered.text


# --- what the answer must be ----------------------------------------------------------------------------------


def media_ranges(accept: str) -> list[tuple[str, float]]:
    ranges: list[tuple[str, float]] = []
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                q = float(value)
        if media:
            ranges.append((media.lower(), q))
    return ranges


def negotiated(accept: str | None) -> str | None:
    """graphql-response+json when named with a q not lower than application/json's; else application/json when it
    is acceptable at all (wildcards included); None: neither (406)."""
    if accept is None:
        return JSON
    ranges = media_ranges(accept)
    q_response = max((q for media, q in ranges if media == GRAPHQL_RESPONSE), default=None)
    q_json = 0.0
    for candidate in (JSON, "application/*", "*/*"):  # the most specific range that matches decides
        matching = [q for media, q in ranges if media == candidate]
        if matching:
            q_json = max(matching)
            break
    if q_response is not None and q_response > 0 and q_response >= q_json:
        return GRAPHQL_RESPONSE
    return JSON if q_json > 0 else None


def content_type(response: httpx.Response) -> tuple[str, str | None]:
    media, *params = (part.strip().lower() for part in response.headers.get("content-type", "").split(";"))
    charset = next((p.partition("=")[2].strip('"') for p in params if p.startswith("charset=")), None)
    return media, charset


def comparable(response: httpx.Response) -> Any:
    """The body without what may differ between equal answers: the data's age and request ids."""
    try:
        body = response.json()
    except ValueError:
        return response.text
    if not isinstance(body, dict):
        return body
    for holder in [body, *(e for e in body.get("errors") or [] if isinstance(e, dict))]:
        extensions = holder.get("extensions")
        if isinstance(extensions, dict):
            extensions = {k: v for k, v in extensions.items() if k not in ("cacheAge", "requestId")}
            if extensions:
                holder["extensions"] = extensions
            else:
                del holder["extensions"]
    return body


HISTORY: deque[str] = deque(maxlen=12)


def describe(case: Case) -> str:
    return f"{case.method} accept={case.accept!r} apq={case.apq} fields={json.dumps(case.fields(), default=str)}"


def check(case: Case, responses: dict[str, httpx.Response]) -> None:
    recent = "\n  ".join(HISTORY)
    context = f"\nrequest: {describe(case)}\nrecent requests, oldest first:\n  {recent}"
    summary = {
        name: (r.status_code, r.headers.get("content-type"), r.headers.get("x-response-cache"), r.text[:400])
        for name, r in responses.items()
    }
    context += "\nanswers: " + json.dumps(summary, ensure_ascii=False, indent=1)
    first = responses["uncached"]
    for name, response in responses.items():
        assert response.status_code == first.status_code, f"{name}: status differs{context}"
        assert content_type(response) == content_type(first), f"{name}: content type differs{context}"
        assert comparable(response) == comparable(first), f"{name}: body differs{context}"

    media = negotiated(case.accept)
    status, (got_media, charset) = first.status_code, content_type(first)
    body = first.json()
    if media is None or case.twice is not None:  # an HTTP-level refusal, in JSON
        allowed = {406} if case.twice is None else ({400} if media is not None else {400, 406})
        assert status in allowed, f"expected {allowed}{context}"
        assert got_media in (JSON, GRAPHQL_RESPONSE), context
        assert "data" not in body, context
        assert body["errors"], context
        return
    assert got_media == media, f"expected {media}{context}"
    assert (charset == "utf-8") if media == GRAPHQL_RESPONSE else (charset in (None, "utf-8")), context
    if case.apq == "unknown":
        assert status in (200, 404), context  # tests/test_persisted.py pins what Apollo Client expects
        assert body["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND", context
        return
    if case.operation.runs:
        assert status == 200, context
        assert "data" in body, context
    else:
        assert status == (400 if media == GRAPHQL_RESPONSE else 200), context
        assert "data" not in body, context
        assert body["errors"], context


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI stays reproducible
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=cases())
def test_the_cache_never_changes_an_answer(services: Services, case: Case) -> None:
    note(describe(case))
    if case.apq == "hash-only":
        register(services.cached, case.operation)
        register(services.uncached, case.operation)
    responses = {
        "uncached": send(services.uncached, case),
        "cached": send(services.cached, case),
        "cached again": send(services.cached, case),
    }
    HISTORY.append(describe(case))
    check(case, responses)


# --- the premise ----------------------------------------------------------------------------------------------


def test_the_uncached_service_reuses_nothing(services: Services, sandbox: SandboxGateway) -> None:
    body = {"query": '{ miniAppVersion(appVersion: "1.1.0-beta", bundleId: "com.alipay.iot.xpaas") { status } }'}
    for _ in range(2):
        answer = services.uncached.post("/graphql", json=body)
        assert "x-response-cache" not in answer.headers
    assert len(sandbox.calls) == 2  # each request asked the gateway again
    services.cached.post("/graphql", json=body)  # asks the gateway, unless an earlier example cached the answer
    asked = len(sandbox.calls)
    assert asked <= 3
    again = services.cached.post("/graphql", json=body)
    assert again.headers.get("x-response-cache") == "hit"
    assert len(sandbox.calls) == asked  # the cached one reused it


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{JSON}, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0.5, {JSON}", JSON),
        (f"text/plain, {GRAPHQL_RESPONSE};q=0.1", GRAPHQL_RESPONSE),
        ("text/plain", None),
        (f"{GRAPHQL_RESPONSE};q=0", None),
    ],
)
def test_the_negotiation_rule_this_module_expects(accept: str | None, expected: str | None) -> None:
    assert negotiated(accept) == expected
