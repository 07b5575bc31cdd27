"""End to end: the service and the sandbox gateway as real servers, GraphQL over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from graph.sandbox import DemoCredentials, Fault, SandboxGateway
from resolvers.arguments import KNOWN_BUNDLE_IDS
from tests.conftest import MERCHANT_TOKEN, OTHER_MERCHANT_TOKEN

FULL_VERSION = """
query Full($v: String!, $b: String!) {
  miniAppVersion(appVersion: $v, bundleId: $b) {
    appVersion bundleId appName appEnglishName appLogo versionDesc rejectReason appDesc appSlogan memo
    servicePhone serviceEmail grayStrategy grayPercentage status scanResult
    gmtCreate gmtApplyAudit gmtOnline gmtOffline gmtAuditEnd
    serviceRegionType serviceRegionInfo { provinceCode provinceName cityCode cityName areaCode areaName }
    screenShotList
    miniAppCategoryInfoList {
      firstCategoryId firstCategoryName secondCategoryId secondCategoryName thirdCategoryId thirdCategoryName
    }
    miniCategoryInfoList { firstCategoryId firstCategoryName }
    packageInfoList { packageName packageDesc docUrl status packageOpenType }
    baseAudit promoteAudit canRelease
    baseAuditRecord { auditImages memos { memo memoImageList } }
    promoteAuditRecord { auditImages memos { memo memoImageList } }
  }
}
"""
EVERYWHERE = """
query Everywhere($v: String!, $ids: [String!]) {
  miniAppVersions(appVersion: $v, bundleIds: $ids) {
    __typename
    ... on MiniAppVersion { appVersion bundleId status }
    ... on MiniAppVersionError { appVersion bundleId code message subCode subMessage retryable }
  }
}
"""
STATUS = """
query($v: String!, $b: String! = "com.alipay.alipaywallet") { miniAppVersion(appVersion: $v, bundleId: $b) { status } }
"""


async def post(url: str, query: str, variables: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        return await http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


async def test_every_field_of_a_version(graph_url: str, sandbox: SandboxGateway) -> None:
    response = await post(graph_url, FULL_VERSION, {"v": "0.0.1", "b": "com.alipay.alipaywallet"})
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body
    version = body["data"]["miniAppVersion"]
    assert version["appVersion"] == "0.0.1"
    assert version["bundleId"] == "com.alipay.alipaywallet"
    assert version["gmtCreate"].endswith("+08:00")
    assert version["status"] in {"RELEASE", "GRAY", "AUDITING", "AUDIT_REJECT", "WAIT_RELEASE", "INIT", "OFFLINE"}
    assert version["appLogo"].startswith("https://")
    assert len(sandbox.calls) == 1


async def test_aliases_and_lists_share_one_call_per_key(graph_url: str, sandbox: SandboxGateway) -> None:
    query = """
    query {
      a: miniAppVersion(appVersion: "0.0.1") { status }
      b: miniAppVersion(appVersion: "0.0.1", bundleId: "com.alipay.alipaywallet") { appName }
      c: miniAppVersions(appVersion: "0.0.1") { __typename }
    }
    """
    body = (await post(graph_url, query)).json()
    assert "errors" not in body
    assert len(body["data"]["c"]) == 5
    assert sorted(c.bundle_id or "" for c in sandbox.calls) == sorted(KNOWN_BUNDLE_IDS)


async def test_versions_default_to_the_five_clients_in_order(graph_url: str, sandbox: SandboxGateway) -> None:
    body = (await post(graph_url, EVERYWHERE, {"v": "0.0.1"})).json()
    assert [item["bundleId"] for item in body["data"]["miniAppVersions"]] == list(KNOWN_BUNDLE_IDS)


async def test_one_clients_failure_does_not_fail_the_rest(graph_url: str, sandbox: SandboxGateway) -> None:
    ids = ["com.alipay.alipaywallet", "com.example.nowhere", "com.amap.app"]
    body = (await post(graph_url, EVERYWHERE, {"v": "0.0.1", "ids": ids})).json()
    assert "errors" not in body
    items = body["data"]["miniAppVersions"]
    assert [item["__typename"] for item in items] == ["MiniAppVersion", "MiniAppVersionError", "MiniAppVersion"]
    assert items[1] == {
        "__typename": "MiniAppVersionError",
        "appVersion": "0.0.1",
        "bundleId": "com.example.nowhere",
        "code": "ALIPAY_BUSINESS_ERROR",
        "message": items[1]["message"],
        "subCode": "BUNDLE_ID_NOT_EXIST",
        "subMessage": items[1]["subMessage"],
        "retryable": False,
    }


async def test_busy_client_is_a_retryable_error_item(graph_url: str, sandbox: SandboxGateway) -> None:
    sandbox.fail_next(Fault.BUSY, times=10, app_version="0.0.2")
    body = (await post(graph_url, EVERYWHERE, {"v": "0.0.2", "ids": ["com.amap.app"]})).json()
    [item] = body["data"]["miniAppVersions"]
    assert (item["code"], item["retryable"]) == ("ALIPAY_UNAVAILABLE", True)
    assert len(sandbox.calls) == 3  # one call and ALIPAY_RETRIES=2 retries


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (Fault.BAD_SIGNATURE, "ALIPAY_BAD_SIGNATURE"),
        (Fault.DUPLICATE_NODE, "ALIPAY_BAD_SIGNATURE"),
        (Fault.UNSIGNED_SUCCESS, "ALIPAY_BAD_SIGNATURE"),
        (Fault.UNSIGNED_ERROR, "ALIPAY_BUSINESS_ERROR"),
        (Fault.GARBAGE_BODY, "ALIPAY_UNAVAILABLE"),
        (Fault.HTTP_502, "ALIPAY_UNAVAILABLE"),
        (Fault.SYSTEM_ERROR, "ALIPAY_UNAVAILABLE"),
        (Fault.BUSINESS_ERROR, "ALIPAY_BUSINESS_ERROR"),
    ],
)
async def test_gateway_faults_become_error_codes(
    graph_url: str, sandbox: SandboxGateway, fault: Fault, code: str
) -> None:
    sandbox.fail_next(fault, times=10)
    body = (await post(graph_url, STATUS, {"v": "0.0.1"})).json()
    assert body["data"] == {"miniAppVersion": None}
    assert codes(body) == [code]
    error = body["errors"][0]
    if code == "ALIPAY_BUSINESS_ERROR":
        assert set(error["extensions"]["alipay"]) == {"code", "msg", "subCode", "subMsg"}


async def test_missing_version_is_a_business_error(graph_url: str, sandbox: SandboxGateway) -> None:
    body = (await post(graph_url, STATUS, {"v": "9.9.9"})).json()
    assert body["data"] == {"miniAppVersion": None}
    [error] = body["errors"]
    assert error["extensions"]["code"] == "ALIPAY_BUSINESS_ERROR"
    assert error["extensions"]["alipay"]["subCode"] == "VERSION_NOT_EXIST"
    assert error["path"] == ["miniAppVersion"]


@pytest.mark.parametrize(
    "variables",
    [
        {"v": ""},
        {"v": "   "},
        {"v": "x" * 65},
        {"v": "0.0.1\n"},
        {"v": "0.0.1", "b": "alipaywallet"},
        {"v": "0.0.1", "b": "com.alipay wallet"},
        {"v": "0.0.1", "b": "com." + "a" * 64},
        {"v": "0.0.1", "b": ""},
    ],
)
async def test_bad_arguments_never_reach_the_gateway(
    graph_url: str, sandbox: SandboxGateway, variables: dict[str, str]
) -> None:
    body = (await post(graph_url, STATUS, variables)).json()
    assert codes(body) == ["BAD_USER_INPUT"]
    assert sandbox.calls == []


async def test_too_many_bundle_ids_is_bad_input(start_app: Callable[..., str], sandbox: SandboxGateway) -> None:
    url = start_app(max_bundle_ids=2)
    body = (await post(url, EVERYWHERE, {"v": "0.0.1", "ids": ["com.a.b", "com.c.d", "com.e.f"]})).json()
    assert body["data"] is None
    assert codes(body) == ["BAD_USER_INPUT"]
    assert sandbox.calls == []


async def test_an_operation_over_the_call_budget_is_refused_whole(
    start_app: Callable[..., str], sandbox: SandboxGateway
) -> None:
    url = start_app(max_upstream_calls=3)
    query = "{ " + " ".join(f'v{i}: miniAppVersion(appVersion: "0.0.{i}") {{ status }}' for i in range(4)) + " }"
    body = (await post(url, query)).json()
    assert codes(body) == ["QUERY_TOO_COMPLEX"]
    assert "data" not in body  # refused before execution: a request error (GraphQL over HTTP)
    assert sandbox.calls == []
    # The same key asked four times is one call, within budget.
    same = "{ " + " ".join(f'v{i}: miniAppVersion(appVersion: "0.0.1") {{ status }}' for i in range(4)) + " }"
    assert "errors" not in (await post(url, same)).json()


async def test_merchant_token_is_forwarded_and_validated(graph_url: str, sandbox: SandboxGateway) -> None:
    body = (await post(graph_url, STATUS, {"v": "0.0.1"}, **{"X-Alipay-App-Auth-Token": MERCHANT_TOKEN})).json()
    assert "errors" not in body
    assert sandbox.calls[-1].has_app_auth_token
    unknown = (await post(graph_url, STATUS, {"v": "0.0.1"}, **{"X-Alipay-App-Auth-Token": "202611BBnobody"})).json()
    assert unknown["errors"][0]["extensions"]["alipay"]["code"] == "20001"
    assert "202611BBnobody" not in str(unknown)
    malformed = await post(graph_url, STATUS, {"v": "0.0.1"}, **{"X-Alipay-App-Auth-Token": "bad token!"})
    assert malformed.status_code == 400
    assert codes(malformed.json()) == ["BAD_USER_INPUT"]


async def test_tokens_are_part_of_the_batch_key(graph_url: str, sandbox: SandboxGateway) -> None:
    for token in (MERCHANT_TOKEN, OTHER_MERCHANT_TOKEN):
        await post(graph_url, STATUS, {"v": "0.0.1"}, **{"X-Alipay-App-Auth-Token": token})
    await post(graph_url, STATUS, {"v": "0.0.1"})
    digests = [c.app_auth_token_digest for c in sandbox.calls]
    assert len(digests) == 3
    assert len(set(digests)) == 3


async def test_entities_resolve_through_the_same_path(graph_url: str, sandbox: SandboxGateway) -> None:
    query = """
    query($r: [_Any!]!) { _entities(representations: $r) { ... on MiniAppVersion { appVersion bundleId status } } }
    """
    reps = [
        {"__typename": "MiniAppVersion", "appVersion": "0.0.1", "bundleId": "com.amap.app"},
        {"__typename": "MiniAppVersion", "appVersion": "0.0.1", "bundleId": "com.amap.app"},
        {"__typename": "Nope", "appVersion": "0.0.1", "bundleId": "com.amap.app"},
        {"__typename": "MiniAppVersion", "appVersion": "", "bundleId": "com.amap.app"},
        {"__typename": "MiniAppVersion", "appVersion": 1},
    ]
    body = (await post(graph_url, query, {"r": reps})).json()
    entities = body["data"]["_entities"]
    assert (
        entities[0]
        == entities[1]
        == {"appVersion": "0.0.1", "bundleId": "com.amap.app", "status": entities[0]["status"]}
    )
    assert entities[2:] == [None, None, None]
    assert codes(body) == ["BAD_USER_INPUT"] * 3
    assert len(sandbox.calls) == 1


async def test_service_sdl_is_federation_2(graph_url: str) -> None:
    body = (await post(graph_url, "{ _service { sdl } }")).json()
    sdl = body["data"]["_service"]["sdl"]
    assert 'type MiniAppVersion @key(fields: "appVersion bundleId")' in sdl
    assert "https://specs.apollo.dev/federation/v2" in sdl


async def test_get_queries_and_graphiql(graph_url: str, sandbox: SandboxGateway) -> None:
    async with httpx.AsyncClient(base_url=graph_url) as http:
        got = await http.get("/graphql", params={"query": '{ miniAppVersion(appVersion: "0.0.1") { status } }'})
        assert got.status_code == 200
        assert got.json()["data"]["miniAppVersion"]["status"]
        page = await http.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert "graphiql" in page.text.lower()
        mutation = await http.get("/graphql", params={"query": "mutation { x }"})
        assert mutation.status_code >= 400


async def test_closed_by_default(
    start_app: Callable[..., str], sandbox: SandboxGateway, caplog: pytest.LogCaptureFixture
) -> None:
    url = start_app(allow_anonymous=False)
    why = next(r for r in caplog.records if r.name == "graph.app" and "refused" in r.getMessage())
    assert (
        why.getMessage() == "every /graphql request will be refused: set GRAPH_API_KEYS or GRAPH_ALLOW_ANONYMOUS=true"
    )
    keyed = await post(url, "{ __typename }", Authorization="Bearer anything")
    assert keyed.status_code == 401  # no key matches when there are none
    response = await post(url, STATUS, {"v": "0.0.1"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert codes(response.json()) == ["UNAUTHENTICATED"]
    assert "GRAPH_API_KEYS" in response.json()["errors"][0]["message"]
    assert sandbox.calls == []


async def test_api_keys(start_app: Callable[..., str], sandbox: SandboxGateway) -> None:
    url = start_app(allow_anonymous=False, api_keys=frozenset({"key-one", "key-two"}))
    assert (await post(url, STATUS, {"v": "0.0.1"})).status_code == 401
    assert (await post(url, STATUS, {"v": "0.0.1"}, Authorization="Bearer nope")).status_code == 401
    assert (await post(url, STATUS, {"v": "0.0.1"}, Authorization="Basic key-one")).status_code == 401
    ok = await post(url, STATUS, {"v": "0.0.1"}, Authorization="Bearer key-two")
    assert ok.status_code == 200
    assert "errors" not in ok.json()
    async with httpx.AsyncClient(base_url=url) as http:
        page = await http.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200  # the playground page is public; its queries are not
        assert (await http.get("/healthz")).status_code == 200


async def test_wrong_key_is_refused_even_when_anonymous_is_allowed(graph_url: str) -> None:
    assert (await post(graph_url, STATUS, {"v": "0.0.1"}, Authorization="Bearer wrong")).status_code == 401


async def test_request_ids(graph_url: str) -> None:
    mine = await post(graph_url, STATUS, {"v": "0.0.1"}, **{"X-Request-Id": "abc-123"})
    assert mine.headers["x-request-id"] == "abc-123"
    made = await post(graph_url, STATUS, {"v": "0.0.1"}, **{"X-Request-Id": "has spaces\tand tabs"})
    assert made.headers["x-request-id"] != "has spaces\tand tabs"
    assert len(made.headers["x-request-id"]) == 32


async def test_oversized_body_is_refused(start_app: Callable[..., str]) -> None:
    url = start_app(max_body_bytes=2048)
    response = await post(url, STATUS, {"v": "0.0.1", "pad": "x" * 4096})
    assert response.status_code == 413
    assert codes(response.json()) == ["BAD_USER_INPUT"]


async def test_health_and_readiness(graph_url: str) -> None:
    async with httpx.AsyncClient(base_url=graph_url) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"


async def test_introspection_can_be_turned_off(start_app: Callable[..., str]) -> None:
    on = (await post(start_app(), "{ __schema { queryType { name } } }")).json()
    assert on["data"]["__schema"]["queryType"]["name"] == "Query"
    off = (await post(start_app(introspection=False), "{ __schema { queryType { name } } }")).json()
    assert "errors" in off


async def test_malformed_requests_get_4xx(graph_url: str) -> None:
    async with httpx.AsyncClient(base_url=graph_url) as http:
        bad_json = await http.post("/graphql", content=b"{not json", headers={"Content-Type": "application/json"})
        assert 400 <= bad_json.status_code < 500
        no_query = await http.post("/graphql", json={"variables": {}})
        assert 400 <= no_query.status_code < 500
        syntax = await http.post("/graphql", json={"query": "{ miniAppVersion("})
        assert syntax.status_code in {200, 400}
        assert "errors" in syntax.json()


def test_uvicorn_factory_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch, demo_credentials: DemoCredentials, gateway_url: str
) -> None:
    # What the Dockerfile runs: uvicorn --factory graph.app:from_environ
    import logging

    from graph.app import Service, from_environ

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    monkeypatch.setenv("ALIPAY_APP_ID", demo_credentials.app_id)
    monkeypatch.setenv("ALIPAY_APP_PRIVATE_KEY", demo_credentials.app_private_key_pem)
    monkeypatch.setenv("ALIPAY_PUBLIC_KEY", demo_credentials.alipay_public_key_pem)
    monkeypatch.setenv("ALIPAY_GATEWAY_URL", gateway_url)
    monkeypatch.setenv("GRAPH_LOG_FORMAT", "text")
    try:
        assert isinstance(from_environ(), Service)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def test_uvicorn_factory_stops_with_one_line_on_bad_config(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from graph.app import from_environ

    monkeypatch.delenv("ALIPAY_APP_ID", raising=False)
    with pytest.raises(SystemExit) as stopped:
        from_environ()
    assert stopped.value.code == 2
    assert capsys.readouterr().err == "alipay-graph: ALIPAY_APP_ID is required unless --demo\n"
