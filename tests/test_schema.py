"""The schema as an Apollo Federation 2 subgraph: its SDL and ``_entities``, over real HTTP on the sandbox gateway.

tests/test_federation.py proves the same with Apollo's own composition and gateway; these tests need no Node.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from graph.sandbox import Fault, SandboxGateway, token_digest
from tests.conftest import MERCHANT_TOKEN, OTHER_MERCHANT_TOKEN

ENTITIES = """
query($r: [_Any!]!) {
  _entities(representations: $r) { __typename ... on MiniAppVersion { appVersion bundleId appName status } }
}
"""
ALIPAY, AMAP, DINGTALK = "com.alipay.alipaywallet", "com.amap.app", "com.alibaba.android.rimet"


def ref(app_version: object, bundle_id: object) -> dict[str, object]:
    return {"__typename": "MiniAppVersion", "appVersion": app_version, "bundleId": bundle_id}


async def entities(url: str, representations: list[Any], **headers: str) -> dict[str, Any]:
    return await post(url, ENTITIES, {"r": representations}, **headers)


async def post(url: str, query: str, variables: dict[str, Any], **headers: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        response = await http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def errors_by_index(body: dict[str, Any]) -> dict[int, tuple[str, str]]:
    return {error["path"][1]: (error["extensions"]["code"], error["message"]) for error in body.get("errors", [])}


async def test_sdl_links_a_pinned_federation_version(graph_url: str) -> None:
    async with httpx.AsyncClient(base_url=graph_url) as http:
        sdl = (await http.post("/graphql", json={"query": "{ _service { sdl } }"})).json()["data"]["_service"]["sdl"]
    # What rover reads from a running instance is the committed schema.graphql, byte for byte.
    assert sdl + "\n" == (Path(__file__).parent.parent / "schema.graphql").read_text()
    assert sdl.startswith('schema @link(url: "https://specs.apollo.dev/federation/v2.0", import: ["@key"])')
    assert 'type MiniAppVersion @key(fields: "appVersion bundleId") {' in sdl
    # Nothing is @shareable: only this service answers for Alipay, and the key fields are shareable by rule.
    assert "@shareable" not in sdl
    assert sdl.count("@key(") == 1


@pytest.mark.parametrize(
    ("representation", "message"),
    [
        ({"appVersion": "0.0.1", "bundleId": AMAP}, "bad entity reference: __typename is missing"),
        ({"__typename": None, "appVersion": "0.0.1", "bundleId": AMAP}, "bad entity reference: __typename is missing"),
        ("MiniAppVersion", "bad entity reference: a representation must be an object"),
        (7, "bad entity reference: a representation must be an object"),
        ([ref("0.0.1", AMAP)], "bad entity reference: a representation must be an object"),
        ({"__typename": "MiniAppVersionError"}, "bad entity reference: only MiniAppVersion is resolvable here"),
        ({"__typename": "Product", "upc": "1"}, "bad entity reference: only MiniAppVersion is resolvable here"),
        ({"__typename": "MiniAppVersion", "appVersion": "0.0.1"}, "needs string fields appVersion and bundleId"),
        (ref(1, AMAP), "needs string fields appVersion and bundleId"),
        (ref("0.0.1", ["com.amap.app"]), "needs string fields appVersion and bundleId"),
        (ref("", AMAP), "appVersion must not be empty"),
        (ref("0.0.1", "amap"), "bundleId must be a reverse-domain id"),
    ],
)
async def test_a_bad_reference_fails_only_its_own_item(
    graph_url: str, sandbox: SandboxGateway, representation: object, message: str
) -> None:
    body = await entities(graph_url, [ref("0.0.1", ALIPAY), representation, ref("0.0.1", AMAP)])
    first, bad, last = body["data"]["_entities"]
    assert (first["bundleId"], first["status"], last["bundleId"], last["status"]) == (
        ALIPAY,
        "RELEASE",
        AMAP,
        "OFFLINE",
    )
    assert bad is None
    [(code, text)] = errors_by_index(body).values()
    assert code == "BAD_USER_INPUT"
    assert message in text
    assert list(errors_by_index(body)) == [1]
    assert len(sandbox.calls) == 2  # a bad reference never reaches the gateway


async def test_an_upstream_failure_fails_only_its_own_item(graph_url: str, sandbox: SandboxGateway) -> None:
    sandbox.fail_next(Fault.BUSY, times=3, app_version="0.0.2")  # the first try and both retries
    body = await entities(graph_url, [ref("9.9.9", ALIPAY), ref("0.0.1", ALIPAY), ref("0.0.2", ALIPAY)])
    missing, found, busy = body["data"]["_entities"]
    assert (missing, busy) == (None, None)
    assert found["appName"]
    assert {index: code for index, (code, _) in errors_by_index(body).items()} == {
        0: "ALIPAY_BUSINESS_ERROR",
        2: "ALIPAY_UNAVAILABLE",
    }


async def test_references_share_one_concurrent_call_per_distinct_key(graph_url: str, sandbox: SandboxGateway) -> None:
    sandbox.fail_next(Fault.slow(0.3), times=3)
    keys = [ref("0.0.1", ALIPAY), ref("0.0.1", AMAP), ref("0.0.1", ALIPAY), ref("0.0.1", DINGTALK), ref("0.0.1", AMAP)]
    body = await entities(graph_url, keys)
    assert "errors" not in body
    assert [item["bundleId"] for item in body["data"]["_entities"]] == [ALIPAY, AMAP, ALIPAY, DINGTALK, AMAP]
    assert sorted(call.bundle_id or "" for call in sandbox.calls) == sorted([ALIPAY, AMAP, DINGTALK])
    assert sandbox.max_in_flight == 3  # the three calls were in flight together, not one after another


async def test_references_resolve_for_the_merchant_of_the_request(graph_url: str, sandbox: SandboxGateway) -> None:
    keys = [ref("0.0.1", ALIPAY), ref("0.0.1", AMAP)]
    for token in (MERCHANT_TOKEN, OTHER_MERCHANT_TOKEN):
        body = await entities(graph_url, keys, **{"X-Alipay-App-Auth-Token": token})
        assert "errors" not in body
    assert [call.app_auth_token_digest for call in sandbox.calls] == [token_digest(MERCHANT_TOKEN)] * 2 + [
        token_digest(OTHER_MERCHANT_TOKEN)
    ] * 2


async def test_references_and_queries_share_the_cache_per_merchant(graph_url: str, sandbox: SandboxGateway) -> None:
    query = 'query($b: String!) { miniAppVersion(appVersion: "0.0.1", bundleId: $b) { appName } }'
    merchant = {"X-Alipay-App-Auth-Token": MERCHANT_TOKEN}
    assert "errors" not in await post(graph_url, query, {"b": AMAP}, **merchant)
    assert len(sandbox.calls) == 1
    body = await entities(graph_url, [ref("0.0.1", AMAP)], **merchant)  # the query's cached answer
    assert body["data"]["_entities"][0]["bundleId"] == AMAP
    assert body["extensions"]["cacheAge"] >= 0
    assert len(sandbox.calls) == 1
    await entities(graph_url, [ref("0.0.1", AMAP)], **{"X-Alipay-App-Auth-Token": OTHER_MERCHANT_TOKEN})
    await entities(graph_url, [ref("0.0.1", AMAP)])
    assert [call.app_auth_token_digest for call in sandbox.calls] == [
        token_digest(MERCHANT_TOKEN),
        token_digest(OTHER_MERCHANT_TOKEN),
        None,
    ]
