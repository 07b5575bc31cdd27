"""The whole-response cache over real HTTP: what is stored, for whom, for how long, and what never is."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from graph.data.freshness import no_cache
from graph.http.document import normalise
from graph.sandbox import Fault, SandboxGateway
from tests.conftest import MERCHANT_TOKEN, OTHER_MERCHANT_TOKEN

QUERY = "query Status($v: String!) { miniAppVersion(appVersion: $v) { appVersion status } }"


async def post(
    url: str, query: str = QUERY, variables: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    body = {"query": query, "variables": variables or {"v": "0.0.1"}}
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        return await http.post("/graphql", json=body, headers=headers)


def hit(response: httpx.Response) -> bool:
    return bool(response.headers.get("x-response-cache") == "hit")


async def test_a_repeated_operation_is_answered_from_the_response_cache(
    graph_url: str, sandbox: SandboxGateway
) -> None:
    first = await post(graph_url)
    second = await post(graph_url)
    assert not hit(first)
    assert hit(second)
    assert second.json()["data"] == first.json()["data"]
    assert second.json()["extensions"]["cacheAge"] == 0
    assert second.headers["x-request-id"]  # the guard still stamps every response
    assert len(sandbox.calls) == 1


async def test_a_hit_reports_the_age_of_its_data(graph_url: str, sandbox: SandboxGateway) -> None:
    await post(graph_url)
    await asyncio.sleep(1.1)
    later = await post(graph_url)
    assert hit(later)
    assert later.json()["extensions"]["cacheAge"] >= 1


async def test_insignificant_differences_share_an_entry(graph_url: str, sandbox: SandboxGateway) -> None:
    await post(graph_url)
    spaced = (
        "# a comment\nquery Status( $v : String! ) ,{\n  miniAppVersion( appVersion: $v ) { appVersion, status }\n}"
    )
    assert hit(await post(graph_url, spaced))
    assert hit(await post(graph_url, QUERY, {"v": "0.0.1"}))


async def test_what_changes_the_answer_changes_the_key(graph_url: str, sandbox: SandboxGateway) -> None:
    await post(graph_url)
    assert not hit(await post(graph_url, variables={"v": "0.0.2"}))
    literal = 'query Status { miniAppVersion(appVersion: "0.0.1") { appVersion status } }'
    assert not hit(await post(graph_url, literal))
    assert hit(await post(graph_url, literal))
    other_string = (
        'query Status { miniAppVersion(appVersion: "0.0.1", bundleId: "com.amap.app") { appVersion status } }'
    )
    assert not hit(await post(graph_url, other_string))


async def test_tenants_and_callers_never_share(start_app: Callable[..., str], sandbox: SandboxGateway) -> None:
    url = start_app(allow_anonymous=False, api_keys=frozenset({"key-one", "key-two"}))
    one = {"Authorization": "Bearer key-one"}
    await post(url, headers=one)
    assert hit(await post(url, headers=one))
    assert not hit(await post(url, headers={"Authorization": "Bearer key-two"}))
    assert not hit(await post(url, headers=one | {"X-Alipay-App-Auth-Token": MERCHANT_TOKEN}))
    assert not hit(await post(url, headers=one | {"X-Alipay-App-Auth-Token": OTHER_MERCHANT_TOKEN}))
    refused = await post(url)
    assert refused.status_code == 401  # the guard runs before the cache: no key, no cached answer


async def test_get_queries_are_cached_too(graph_url: str, sandbox: SandboxGateway) -> None:
    params = {"query": QUERY, "variables": '{"v": "0.1.0"}'}
    async with httpx.AsyncClient(base_url=graph_url) as http:
        first = await http.get("/graphql", params=params)
        second = await http.get("/graphql", params=params)
        bad = await http.get("/graphql", params={"query": QUERY, "variables": "{not json"})
    assert first.status_code == second.status_code == 200
    assert hit(second)
    assert second.json()["data"] == first.json()["data"]
    assert 400 <= bad.status_code < 500


async def test_no_cache_skips_and_refreshes(start_app: Callable[..., str], sandbox: SandboxGateway) -> None:
    graph_url = start_app(cache_min_refresh_s=1.0)
    await post(graph_url)
    await asyncio.sleep(1.1)
    fresh = await post(graph_url, headers={"Cache-Control": "no-cache"})
    assert not hit(fresh)
    assert fresh.json()["extensions"]["cacheAge"] == 0
    refreshed = await post(graph_url)
    assert hit(refreshed)
    assert refreshed.json()["extensions"]["cacheAge"] == 0  # the fresh response replaced the stored one
    assert len(sandbox.calls) == 2


async def test_transient_failures_are_never_stored(graph_url: str, sandbox: SandboxGateway) -> None:
    sandbox.fail_next(Fault.BUSY, times=3)
    busy = await post(graph_url)
    assert busy.json()["errors"][0]["extensions"]["code"] == "ALIPAY_UNAVAILABLE"
    after = await post(graph_url)
    assert not hit(after)
    assert "errors" not in after.json()


async def test_business_errors_are_stored_for_the_error_ttl(
    start_app: Callable[..., str], sandbox: SandboxGateway
) -> None:
    url = start_app(cache_error_ttl_s=0.5)
    missing = await post(url, variables={"v": "9.9.9"})
    assert missing.json()["errors"][0]["extensions"]["code"] == "ALIPAY_BUSINESS_ERROR"
    again = await post(url, variables={"v": "9.9.9"})
    assert hit(again)
    assert again.json()["errors"] == missing.json()["errors"]
    await asyncio.sleep(0.6)
    assert not hit(await post(url, variables={"v": "9.9.9"}))
    assert len(sandbox.calls) == 2


async def test_other_errors_are_never_stored(graph_url: str, sandbox: SandboxGateway) -> None:
    for _ in range(2):
        bad = await post(graph_url, variables={"v": ""})
        assert bad.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert not hit(bad)
    for _ in range(2):
        invalid = await post(graph_url, "{ nope }")
        assert not hit(invalid)


async def test_a_response_lives_as_long_as_its_shortest_answer(
    start_app: Callable[..., str], sandbox: SandboxGateway
) -> None:
    url = start_app(cache_ttl_s=1.0)
    await post(url, '{ a: miniAppVersion(appVersion: "0.0.1") { status } }')
    await asyncio.sleep(0.6)
    both = '{ a: miniAppVersion(appVersion: "0.0.1") { status } b: miniAppVersion(appVersion: "0.0.2") { status } }'
    await post(url, both)  # uses one answer with ~0.4 s left and one fresh
    assert hit(await post(url, both))
    await asyncio.sleep(0.5)
    assert not hit(await post(url, both))  # gone with its older answer, though the newer one still lives


async def test_operations_without_gateway_answers_are_cached_without_an_age(graph_url: str) -> None:
    first = await post(graph_url, "{ __typename }")
    second = await post(graph_url, "{ __typename }")
    assert hit(second)
    assert second.json() == first.json() == {"data": {"__typename": "Query"}}


async def test_requests_it_does_not_understand_pass_through(graph_url: str) -> None:
    async with httpx.AsyncClient(base_url=graph_url) as http:
        apq = {"query": QUERY, "variables": {"v": "0.0.1"}, "extensions": {"persistedQuery": {"version": 1}}}
        for _ in range(2):
            assert not hit(await http.post("/graphql", json=apq))
        batch = await http.post("/graphql", json=[{"query": "{ __typename }"}])
        assert not hit(batch)
        text = await http.post("/graphql", content=b"{ __typename }", headers={"Content-Type": "text/plain"})
        assert not hit(text)
        odd = await http.post("/graphql", json={"query": QUERY, "variables": [1]})
        assert not hit(odd)
        assert 400 <= odd.status_code < 500


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("{ a  b }", "{a b}"),
        ("query ,Q { a }\n# comment\n", "query Q{a}"),
        ("query Q( $v : [Int!]! = [1, 2] ) @x { ...F }", "query Q($v:[Int!]!=[1 2])@x{...F}"),
        ('{ a(s: "x  ,  y # not a comment") }', '{a(s:"x  ,  y # not a comment")}'),
        ('{ a(s: """ block  "quoted"  text """) }', '{a(s:""" block  "quoted"  text """)}'),
        ('{ a(s: "esc \\" , x") }', '{a(s:"esc \\" , x")}'),
        ('{ a(s: "unterminated) }', '{ a(s: "unterminated) }'),
    ],
)
def test_normalise_keeps_strings_exactly(document: str, expected: str) -> None:
    assert normalise(document) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [("no-cache", True), ("max-age=0", True), ("public, No-Cache", True), ("max-age=60", False), ("", False)],
)
def test_no_cache_directives(header: str, expected: bool) -> None:
    assert no_cache(header) is expected


async def test_what_cannot_run_is_a_request_error_and_never_cached(graph_url: str) -> None:
    graphql_response = {"Accept": "application/graphql-response+json"}
    async with httpx.AsyncClient(base_url=graph_url) as http:
        for _ in range(2):  # the second is no hit: nothing was kept
            mutation = await http.post("/graphql", json={"query": "mutation { x }"})
            assert mutation.status_code == 200
            assert "data" not in mutation.json()
            assert mutation.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
            assert "x-response-cache" not in mutation.headers
        unknown = {"query": "query A { __typename }", "operationName": "B"}
        refused = await http.post("/graphql", json=unknown, headers=graphql_response)
        assert refused.status_code == 400
        assert "data" not in refused.json()
        assert "B" in refused.json()["errors"][0]["message"]
