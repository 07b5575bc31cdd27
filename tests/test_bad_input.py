"""The bad-input matrix: every argument and header, over-long, empty, of the wrong type, unicode, huge lists,
1000 aliases, deep fragments. Each case: the HTTP status, the error code, and how many gateway calls it cost
(zero for everything refused: checks run before any call)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from graph.sandbox import SandboxGateway
from tests.conftest import MERCHANT_TOKEN

ONE = "query($v: String!, $b: String!) { miniAppVersion(appVersion: $v, bundleId: $b) { status } }"
MANY = "query($v: String!, $ids: [String!]) { miniAppVersions(appVersion: $v, bundleIds: $ids) { __typename } }"
ENTITIES = "query($r: [_Any!]!) { _entities(representations: $r) { __typename } }"
WALLET = "com.alipay.alipaywallet"


def rep(version: Any = "0.0.1", bundle: Any = WALLET, typename: Any = "MiniAppVersion") -> dict[str, Any]:
    return {"__typename": typename, "appVersion": version, "bundleId": bundle}


def deep_fragments(levels: int) -> str:
    """Introspection nested through a chain of fragments, two fields a level."""
    chain = " ".join(f"fragment F{i} on __Type {{ fields {{ type {{ ...F{i + 1} }} }} }}" for i in range(levels))
    return "{ __schema { types { ...F0 } } } " + chain + f" fragment F{levels} on __Type {{ name }}"


@dataclass(frozen=True)
class Bad:
    name: str
    query: str = ONE
    variables: dict[str, Any] = field(default_factory=lambda: {"v": "0.0.1", "b": WALLET})
    headers: dict[str, str | bytes] = field(default_factory=dict)
    status: int = 200
    code: str | None = "BAD_USER_INPUT"  # None: answered with data, no error
    calls: int = 0  # gateway calls it may cost
    setting: str | None = None  # for QUERY_TOO_COMPLEX: the limit named


def v(name: str, value: Any, code: str | None = "BAD_USER_INPUT", calls: int = 0) -> Bad:
    return Bad(name, variables={"v": value, "b": WALLET}, code=code, calls=calls)


def b(name: str, value: Any, code: str | None = "BAD_USER_INPUT", calls: int = 0) -> Bad:
    return Bad(name, variables={"v": "0.0.1", "b": value}, code=code, calls=calls)


def ids(name: str, value: Any, code: str | None = "BAD_USER_INPUT", calls: int = 0, setting: str | None = None) -> Bad:
    return Bad(name, MANY, {"v": "0.0.1", "ids": value}, code=code, calls=calls, setting=setting)


def reps(name: str, value: Any, code: str | None = "BAD_USER_INPUT", setting: str | None = None) -> Bad:
    return Bad(name, ENTITIES, {"r": value}, code=code, setting=setting)


def h(name: str, status: int, code: str | None, calls: int = 0, **headers: str | bytes) -> Bad:
    return Bad(
        name, headers={k.replace("_", "-"): val for k, val in headers.items()}, status=status, code=code, calls=calls
    )


def doc(name: str, query: str, code: str | None, setting: str | None = None, status: int = 200) -> Bad:
    return Bad(name, query, {}, code=code, setting=setting, status=status)


TOO_COMPLEX = "QUERY_TOO_COMPLEX"
BUSINESS = "ALIPAY_BUSINESS_ERROR"

CASES = [
    # appVersion
    v("appVersion empty", ""),
    v("appVersion blank", "   "),
    v("appVersion 65 characters", "1" * 65),
    v("appVersion 10,000 characters", "1." * 5000),
    v("appVersion 64 characters (the limit): asked", "1" * 64, BUSINESS, 1),
    v("appVersion with a newline", "0.0.1\n"),
    v("appVersion with NUL", "0.0\x001"),
    v("appVersion with a right-to-left override", "0.0.1\u202e"),
    v("appVersion in Chinese: asked", "版本一", BUSINESS, 1),
    v("appVersion with an emoji: asked", "1.0🚀", BUSINESS, 1),
    v("appVersion a number", 5),
    v("appVersion null", None),
    v("appVersion a list", ["0.0.1"]),
    v("appVersion an object", {"v": "0.0.1"}),
    doc("appVersion an Int literal", "{ miniAppVersion(appVersion: 1) { status } }", "GRAPHQL_VALIDATION_FAILED"),
    doc("appVersion missing", "{ miniAppVersion { status } }", "GRAPHQL_VALIDATION_FAILED"),
    # bundleId
    b("bundleId empty", ""),
    b("bundleId without a dot", "alipaywallet"),
    b("bundleId with a space", "com.alipay wallet"),
    b("bundleId 65 characters", "com." + "a" * 61),
    b("bundleId in Chinese", "com.支付宝.app"),
    b("bundleId a path", "../../etc/passwd"),
    b("bundleId with a quote", "com.a';DROP"),
    b("bundleId true", True),
    b("bundleId well-formed, unknown: asked", "com.example.unknown", BUSINESS, 1),
    # bundleIds
    ids("bundleIds empty: no calls", [], None),
    ids("bundleIds 11 (limit 10)", [f"com.a.b{i}" for i in range(11)]),
    ids("bundleIds 5,000 copies of one id", ["com.a.b"] * 5000),
    ids(
        "bundleIds 5,000 distinct ids", [f"c.{i}" for i in range(5000)], TOO_COMPLEX, setting="GRAPH_MAX_UPSTREAM_CALLS"
    ),
    ids("bundleIds with one bad id", ["com.amap.app", "bad id"]),
    ids("bundleIds with null", ["com.amap.app", None]),
    ids("bundleIds a single string: one call", "com.amap.app", None, 1),
    # _entities representations
    reps("500 representations", [rep(f"{i}.0") for i in range(500)], TOO_COMPLEX, "GRAPH_MAX_UPSTREAM_CALLS"),
    reps("representation a string", ["0.0.1"]),
    reps("representation without __typename", [{"appVersion": "0.0.1", "bundleId": WALLET}]),
    reps("representation of an unknown type", [rep(typename="Nope")]),
    reps("representation with a numeric appVersion", [rep(version=1)]),
    reps("representation with a bad bundleId", [rep(bundle="no dot")]),
    # headers
    h("merchant token empty", 400, "BAD_USER_INPUT", X_Alipay_App_Auth_Token=""),
    h("merchant token 129 characters", 400, "BAD_USER_INPUT", X_Alipay_App_Auth_Token="a" * 129),
    h("merchant token with a space", 400, "BAD_USER_INPUT", X_Alipay_App_Auth_Token="202611BB merchant"),
    h("merchant token unicode", 400, "BAD_USER_INPUT", X_Alipay_App_Auth_Token="tökén".encode()),
    h("merchant token unknown upstream", 200, BUSINESS, 1, X_Alipay_App_Auth_Token="202611BBnobody00000"),
    h("merchant token known", 200, None, 1, X_Alipay_App_Auth_Token=MERCHANT_TOKEN),
    h("Authorization: Bearer with no key (anonymous allowed)", 200, None, 1, Authorization="Bearer"),
    h("Authorization: 10 KB bearer key", 401, "UNAUTHENTICATED", Authorization="Bearer " + "k" * 10240),
    h("Authorization: unicode bearer key", 401, "UNAUTHENTICATED", Authorization="Bearer clé".encode()),
    h("X-Request-Id 500 characters: replaced", 200, None, 1, X_Request_Id="r" * 500),
    h("Cache-Control nonsense: ignored", 200, None, 1, Cache_Control="no-cache, max-age=banana, ;;;"),
    h("Content-Type with a charset", 200, None, 1, Content_Type="application/json; charset=utf-8"),
    # documents
    doc(
        "1000 aliases",
        "{ " + " ".join(f"a{i}: __typename" for i in range(1000)) + " }",
        TOO_COMPLEX,
        "GRAPH_MAX_TOKENS",
    ),
    doc("31 aliases", "{ " + " ".join(f"a{i}: __typename" for i in range(31)) + " }", TOO_COMPLEX, "GRAPH_MAX_ALIASES"),
    doc("deep fragments (16 levels)", deep_fragments(8), TOO_COMPLEX, "GRAPH_MAX_DEPTH"),
    doc("10,000 nested braces", "{ a " * 10000 + "}" * 10000, TOO_COMPLEX, "GRAPH_MAX_DEPTH"),
    doc("3,000 tokens", "{ " + "__typename " * 3000 + "}", TOO_COMPLEX, "GRAPH_MAX_TOKENS"),
    doc(
        "a fragment cycle",
        "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
        "GRAPHQL_VALIDATION_FAILED",
    ),
    doc(
        "a fragment bomb (2**20 paths): answered at once",
        "{ ...F0 } "
        + " ".join(f"fragment F{i} on Query {{ __typename ...F{i + 1} ...F{i + 1} }}" for i in range(20))
        + " fragment F20 on Query { __typename }",
        None,
    ),
    doc("a unicode field name", "{ 版本 }", "GRAPHQL_PARSE_FAILED"),
    doc("an unterminated string", '{ miniAppVersion(appVersion: "0.0.1) { status } }', "GRAPHQL_PARSE_FAILED"),
    doc("a body over 64 KiB", "{ __typename }" + " " * 70000, "BAD_USER_INPUT", status=413),
    Bad("a 60 KB variable", variables={"v": "1" * 60000, "b": WALLET}),
    Bad(
        "3,000 unknown variables: ignored",
        variables={"v": "0.0.1", "b": WALLET, **{f"x{i}": i for i in range(3000)}},
        code=None,
        calls=1,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_bad_input(shared_graph_url: str, sandbox: SandboxGateway, case: Bad) -> None:
    given = {"Cache-Control": "no-cache", **case.headers}  # count the calls a case costs, not cache hits
    headers = [(k.encode(), v if isinstance(v, bytes) else v.encode()) for k, v in given.items()]
    async with httpx.AsyncClient(base_url=shared_graph_url, timeout=10) as http:
        response = await http.post("/graphql", json={"query": case.query, "variables": case.variables}, headers=headers)
    assert response.status_code == case.status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    errors = body.get("errors", [])
    if case.code is None:
        assert errors == []
    else:
        assert errors, body
        assert {error["extensions"]["code"] for error in errors} == {case.code}
        assert "Internal error" not in {error["message"] for error in errors}
    if case.setting is not None:
        assert errors[0]["extensions"]["setting"] == case.setting
    assert sandbox.received == case.calls
    if "X-Request-Id" in case.headers:
        assert len(response.headers["x-request-id"]) == 32


async def test_an_8_kb_unknown_header_is_ignored(shared_graph_url: str, sandbox: SandboxGateway) -> None:
    # Request heads past h11's bound are uvicorn's to refuse (a plain 400, or the connection closed while the
    # client still writes, depending on how the bytes arrive), before the service runs.
    async with httpx.AsyncClient(base_url=shared_graph_url) as http:
        response = await http.post("/graphql", json={"query": "{ __typename }"}, headers={"X-Big": "x" * 8_000})
    assert response.status_code == 200
    assert sandbox.received == 0
