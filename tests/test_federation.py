"""Apollo Federation 2, proven with the toolchains' own code: both compositions, a real Apollo Gateway, a second
subgraph.

Our service runs for real on the sandbox gateway; tests/federation/*.mjs (Node, pinned npm packages) compose
its ``_service { sdl }`` with a small release-checklist subgraph, with Apollo's composition (rover, GraphOS) and
with The Guild's (GraphQL Hive, Mesh Compose), and serve both subgraphs behind an Apollo Gateway.
One checklist process and one gateway process serve the whole module.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import DirectiveNode, ObjectTypeDefinitionNode, parse, value_from_ast_untyped
from strawberry.federation.schema_directives import FederationDirective

from graph.app import create_app
from graph.config import Settings
from graph.execution.schema import FEDERATION_VERSION
from graph.gateway.client import Credentials
from graph.sandbox import Fault, SandboxGateway, token_digest
from tests.conftest import MERCHANT_TOKEN
from tests.node import COMPOSE_SCRIPTS, FEDERATION_DIR, PACKAGES, Composer, compose, missing_node, require_node, started
from tests.servers import serve

API_KEY = "federation-test-key"
BEARER = f"Bearer {API_KEY}"
KEY = '@key(fields: "appVersion bundleId")'
ALIPAY, AMAP, DINGTALK = "com.alipay.alipaywallet", "com.amap.app", "com.alibaba.android.rimet"
TRAIN = """
query Train($versions: [String!]!, $clients: [String!]!) {
  releaseTrain(appVersions: $versions, bundleIds: $clients) { appVersion bundleId releaseChecklist appName status }
}
"""
DIRECT = """
query Direct($v: String!, $b: String!) { miniAppVersion(appVersion: $v, bundleId: $b) { appName status } }
"""
COMPOSERS: tuple[Composer, ...] = ("apollo", "hive")


def checklist(app_version: str, bundle_id: str) -> list[str]:
    """What checklist.mjs derives from a key (its releaseChecklist resolver)."""
    return [
        f"submit {app_version} for review on {bundle_id}",
        f"grey-release {app_version} to 10% on {bundle_id}",
        f"release {app_version} on {bundle_id}",
    ]


async def post(url: str, query: str, variables: dict[str, Any] | None = None, **headers: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(url, json={"query": query, "variables": variables or {}}, headers=headers)
    body: dict[str, Any] = response.json()
    return body


# --- the processes ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def node() -> None:
    require_node(reason=missing_node())


@pytest.fixture(scope="module")
def node_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("node")


@pytest.fixture(scope="module")
def subgraph_url(credentials: Credentials, _served_sandbox: tuple[SandboxGateway, str]) -> Iterator[str]:
    """Our service, closed but for one API key, on the session's sandbox gateway; one instance for the module.

    Its cache is off so that each test sees its own gateway calls whatever ran before it (tests/test_schema.py
    shows that references use the cache like queries do).
    """
    settings = Settings(
        credentials=credentials,
        gateway_url=_served_sandbox[1],
        api_keys=frozenset({API_KEY}),
        cache_ttl_s=0,
        cache_error_ttl_s=0,
    )
    with serve(create_app(settings), lifespan="on") as url:
        yield f"{url}/graphql"


@pytest.fixture(scope="module")
def checklist_url(node: None, node_logs: Path) -> Iterator[str]:
    with started("checklist.mjs", logs=node_logs) as url:
        yield url


@pytest.fixture(scope="module")
def federated_url(node: None, node_logs: Path, subgraph_url: str, checklist_url: str) -> Iterator[str]:
    """An Apollo Gateway that composed both subgraphs from their running instances (IntrospectAndCompose)."""
    subgraphs = (f"alipay-miniapp={subgraph_url}", f"checklist={checklist_url}")
    with started("gateway.mjs", *subgraphs, logs=node_logs, authorization=BEARER) as url:
        yield url


@pytest.fixture(scope="module")
def our_sdl(subgraph_url: str) -> str:
    body = httpx.post(subgraph_url, json={"query": "{ _service { sdl } }"}, headers={"Authorization": BEARER}).json()
    sdl: str = body["data"]["_service"]["sdl"]
    return sdl


# --- composition --------------------------------------------------------------------------------------------


def applied(directives: tuple[DirectiveNode, ...] | None, name: str) -> list[dict[str, Any]]:
    """The arguments of each ``@name`` among ``directives`` (None when there are none), in order."""
    return [
        {arg.name.value: value_from_ast_untyped(arg.value) for arg in d.arguments or ()}
        for d in directives or ()
        if d.name.value == name
    ]


def supergraph_type(supergraph: str, name: str) -> ObjectTypeDefinitionNode:
    [found] = [
        d for d in parse(supergraph).definitions if isinstance(d, ObjectTypeDefinitionNode) and d.name.value == name
    ]
    return found


@pytest.mark.parametrize("composer", COMPOSERS)
def test_our_running_subgraph_composes_with_another(
    node: None, subgraph_url: str, checklist_url: str, composer: Composer
) -> None:
    result = compose(
        f"alipay-miniapp={subgraph_url}", f"checklist={checklist_url}", authorization=BEARER, composer=composer
    )
    assert (result.returncode, result.errors, result.hints) == (0, [], []), result.errors + result.hints
    # Read from the parsed supergraph: the two composers print it differently, but must say the same.
    version = supergraph_type(result.supergraph_sdl or "", "MiniAppVersion")
    assert applied(version.directives, "join__type") == [
        {"graph": "ALIPAY_MINIAPP", "key": "appVersion bundleId"},
        {"graph": "CHECKLIST", "key": "appVersion bundleId"},
    ]
    fields = {field.name.value: applied(field.directives, "join__field") for field in version.fields or ()}
    assert fields["releaseChecklist"] == [{"graph": "CHECKLIST"}]
    assert fields["appName"] == [{"graph": "ALIPAY_MINIAPP"}]
    assert fields["appVersion"] == fields["bundleId"] == []  # key fields: resolvable in both subgraphs


@pytest.mark.parametrize("composer", COMPOSERS)
def test_composition_reads_the_sdl_from_the_instance(
    node: None, subgraph_url: str, checklist_url: str, composer: Composer
) -> None:
    # Without the API key our closed service refuses even `_service`: proof that the script asked it, live.
    script = COMPOSE_SCRIPTS[composer].replace(".", r"\.")
    with pytest.raises(AssertionError, match=rf"{script} failed \(2\): .*/graphql answered 401"):
        compose(f"alipay-miniapp={subgraph_url}", f"checklist={checklist_url}", composer=composer)


BREAKS = {
    # our key narrowed: bundleId is then an ordinary, non-shareable field that the checklist also resolves
    "key-narrowed": (
        "ours",
        [(KEY, '@key(fields: "appVersion")')],
        "INVALID_FIELD_SHARING",
        '"MiniAppVersion.bundleId"',
    ),
    # a key field renamed: the checklist subgraph can no longer build our key, so it cannot reach our fields
    "key-field-renamed": (
        "ours",
        [(KEY, '@key(fields: "appVersion clientId")'), ("  bundleId: String!", "  clientId: String!")],
        "SATISFIABILITY_ERROR",
        'cannot move to subgraph "alipay-miniapp" using @key(fields: "appVersion clientId")',
    ),
    "key-dropped": ("ours", [(f" {KEY}", "")], "INVALID_FIELD_SHARING", '"MiniAppVersion.appVersion"'),
    "key-field-retyped": ("ours", [("  bundleId: String!", "  bundleId: ID!")], "FIELD_TYPE_MISMATCH", '"ID!"'),
    # another subgraph defining one of our (deliberately non-shareable) fields
    "field-shared": (
        "checklist",
        [("  releaseChecklist: [String!]!", "  releaseChecklist: [String!]!\n  appName: String")],
        "INVALID_FIELD_SHARING",
        '"MiniAppVersion.appName"',
    ),
}


def changed(text: str, replacements: list[tuple[str, str]]) -> str:
    for old, new in replacements:
        assert old in text, f"{old!r} is not in the SDL: the break would test nothing"
        text = text.replace(old, new)
    return text


@pytest.mark.parametrize("composer", COMPOSERS)
@pytest.mark.parametrize("name", BREAKS)
def test_careless_changes_break_composition(
    node: None, our_sdl: str, tmp_path: Path, name: str, composer: Composer
) -> None:
    # Both composers refuse each break with the same code: so neither can pass the tests above vacuously.
    which, replacements, code, detail = BREAKS[name]
    sdl = {"ours": our_sdl, "checklist": (FEDERATION_DIR / "checklist.graphql").read_text()}
    sdl[which] = changed(sdl[which], replacements)
    for subgraph, text in sdl.items():
        (tmp_path / f"{subgraph}.graphql").write_text(text)
    result = compose(
        f"alipay-miniapp={tmp_path / 'ours.graphql'}", f"checklist={tmp_path / 'checklist.graphql'}", composer=composer
    )
    assert result.returncode == 1
    assert result.supergraph_sdl is None
    assert code in result.error_codes
    assert any(detail in error["message"] for error in result.errors if error["code"] == code), result.errors


@pytest.mark.parametrize("composer", COMPOSERS)
def test_our_fields_are_used_elsewhere_through_requires(
    node: None, our_sdl: str, tmp_path: Path, composer: Composer
) -> None:
    # The sanctioned way for another subgraph to use appName: @external + @requires, not a second definition.
    other = changed(
        (FEDERATION_DIR / "checklist.graphql").read_text(),
        [
            ('import: ["@key"]', 'import: ["@key", "@external", "@requires"]'),
            (
                "  releaseChecklist: [String!]!",
                '  appName: String @external\n  releaseChecklist: [String!]! @requires(fields: "appName")',
            ),
        ],
    )
    (tmp_path / "ours.graphql").write_text(our_sdl)
    (tmp_path / "checklist.graphql").write_text(other)
    result = compose(
        f"alipay-miniapp={tmp_path / 'ours.graphql'}", f"checklist={tmp_path / 'checklist.graphql'}", composer=composer
    )
    assert (result.returncode, result.errors) == (0, [])


LINK = re.compile(r'^schema @link\(url: "https://specs\.apollo\.dev/federation/v(\d+\.\d+)", import: \[(.*?)\]\)')


def test_the_sdl_links_the_lowest_federation_version_with_what_it_imports(our_sdl: str) -> None:
    link = LINK.match(our_sdl)
    assert link, our_sdl[:200]
    version, imports = link[1], re.findall(r'"@(\w+)"', link[2])
    assert (version, imports) == (FEDERATION_VERSION, ["key"]) == ("2.0", ["key"])
    # The version each imported directive first appeared in, as Strawberry records it (it refuses a lower link).
    introduced = {d.imported_from.name: d.minimum_version for d in FederationDirective.__subclasses__()}
    lowest = max([(2, 0)] + [introduced[name] for name in imports])
    assert tuple(int(part) for part in version.split(".")) == lowest


@pytest.mark.parametrize(("version", "refused_by_hive"), [("2.9", False), ("2.10", True), ("2.11", True)])
def test_hive_refuses_federation_versions_it_does_not_know(
    node: None, our_sdl: str, tmp_path: Path, version: str, refused_by_hive: bool
) -> None:
    # Why we link the lowest version: The Guild's composition knows federation v2.0 to v2.9 only (what issue 15
    # found with v2.11), Apollo's knows them all. Linking higher than we need would shut Hive out for nothing.
    ours = changed(our_sdl, [(f"/federation/v{FEDERATION_VERSION}", f"/federation/v{version}")])
    (tmp_path / "ours.graphql").write_text(ours)
    subgraphs = (f"alipay-miniapp={tmp_path / 'ours.graphql'}", f"checklist={FEDERATION_DIR / 'checklist.graphql'}")
    assert compose(*subgraphs, composer="apollo").errors == []
    hive = compose(*subgraphs, composer="hive")
    if not refused_by_hive:
        assert (hive.returncode, hive.errors) == (0, [])
        return
    assert (hive.returncode, hive.error_codes) == (1, ["UNKNOWN_FEDERATION_LINK_VERSION"])
    assert f"[alipay-miniapp] Invalid version v{version} for the federation feature" in hive.errors[0]["message"]


# --- the gateway --------------------------------------------------------------------------------------------


async def test_gateway_resolves_our_entities_per_item_for_the_merchant(
    federated_url: str, subgraph_url: str, sandbox: SandboxGateway
) -> None:
    versions, clients = ["0.0.1", "9.9.9"], [ALIPAY, AMAP, "not a bundle id"]
    headers = {"Authorization": BEARER, "X-Alipay-App-Auth-Token": MERCHANT_TOKEN}
    body = await post(federated_url, TRAIN, {"versions": versions, "clients": clients}, **headers)

    # One gateway call per distinct well-formed key, each for the merchant whose token the gateway forwarded.
    assert sorted((c.app_version, c.bundle_id) for c in sandbox.calls) == [
        ("0.0.1", ALIPAY),
        ("0.0.1", AMAP),
        ("9.9.9", ALIPAY),
        ("9.9.9", AMAP),
    ]
    assert {c.app_auth_token_digest for c in sandbox.calls} == {token_digest(MERCHANT_TOKEN)}

    train = body["data"]["releaseTrain"]
    assert [(item["appVersion"], item["bundleId"]) for item in train] == [(v, b) for v in versions for b in clients]
    assert all(item["releaseChecklist"] == checklist(item["appVersion"], item["bundleId"]) for item in train)
    for item in train[:2]:  # what our own root field says for the same key and merchant
        direct = await post(subgraph_url, DIRECT, {"v": item["appVersion"], "b": item["bundleId"]}, **headers)
        assert {"appName": item["appName"], "status": item["status"]} == direct["data"]["miniAppVersion"]
        assert item["appName"]
    assert [(item["appName"], item["status"]) for item in train[2:]] == [(None, None)] * 4

    # A bad reference is an error for its own item only, attributed to our subgraph.
    errors = {tuple(error["path"]): error["extensions"] for error in body["errors"]}
    assert {path: ext["code"] for path, ext in errors.items()} == {
        ("releaseTrain", 2): "BAD_USER_INPUT",
        ("releaseTrain", 3): "ALIPAY_BUSINESS_ERROR",
        ("releaseTrain", 4): "ALIPAY_BUSINESS_ERROR",
        ("releaseTrain", 5): "BAD_USER_INPUT",
    }
    assert {ext["serviceName"] for ext in errors.values()} == {"alipay-miniapp"}
    assert errors["releaseTrain", 3]["alipay"]["subCode"] == "VERSION_NOT_EXIST"


async def test_gateway_entity_fetch_fans_out_concurrently(federated_url: str, sandbox: SandboxGateway) -> None:
    sandbox.fail_next(Fault.slow(0.3), times=3)
    body = await post(
        federated_url, TRAIN, {"versions": ["0.0.1"], "clients": [ALIPAY, AMAP, DINGTALK]}, Authorization=BEARER
    )
    assert "errors" not in body
    assert [item["status"] for item in body["data"]["releaseTrain"]] == ["RELEASE", "OFFLINE", "RELEASE"]
    assert len(sandbox.calls) == 3
    assert sandbox.max_in_flight == 3  # one _entities request, three gateway calls at once


async def test_gateway_crosses_from_our_root_fields(federated_url: str, sandbox: SandboxGateway) -> None:
    query = """
    {
      miniAppVersion(appVersion: "0.0.2") { appVersion bundleId releaseChecklist }
      miniAppVersions(appVersion: "0.0.1", bundleIds: ["com.amap.app", "com.example.nowhere"]) {
        __typename
        ... on MiniAppVersion { bundleId releaseChecklist }
        ... on MiniAppVersionError { bundleId subCode }
      }
    }
    """
    body = await post(federated_url, query, Authorization=BEARER)
    assert "errors" not in body
    assert body["data"] == {
        "miniAppVersion": {"appVersion": "0.0.2", "bundleId": ALIPAY, "releaseChecklist": checklist("0.0.2", ALIPAY)},
        "miniAppVersions": [
            {"__typename": "MiniAppVersion", "bundleId": AMAP, "releaseChecklist": checklist("0.0.1", AMAP)},
            {"__typename": "MiniAppVersionError", "bundleId": "com.example.nowhere", "subCode": "BUNDLE_ID_NOT_EXIST"},
        ],
    }
    assert len(sandbox.calls) == 3
    assert not any(call.has_app_auth_token for call in sandbox.calls)


async def test_unknown_merchant_token_reaches_alipay_through_the_gateway(
    federated_url: str, sandbox: SandboxGateway
) -> None:
    token = "202611BBnobody"
    headers = {"Authorization": BEARER, "X-Alipay-App-Auth-Token": token}
    body = await post(federated_url, TRAIN, {"versions": ["0.0.1"], "clients": [ALIPAY]}, **headers)
    [error] = body["errors"]
    assert (error["extensions"]["code"], error["extensions"]["alipay"]["code"]) == ("ALIPAY_BUSINESS_ERROR", "20001")
    assert [call.app_auth_token_digest for call in sandbox.calls] == [token_digest(token)]
    assert token not in str(body)


async def test_gateway_forwards_the_callers_key_only(federated_url: str, sandbox: SandboxGateway) -> None:
    body = await post(federated_url, TRAIN, {"versions": ["0.0.1"], "clients": [ALIPAY]})
    assert body["data"]["releaseTrain"] == [
        {
            "appVersion": "0.0.1",
            "bundleId": ALIPAY,
            "releaseChecklist": checklist("0.0.1", ALIPAY),
            "appName": None,
            "status": None,
        }
    ]
    assert [error["extensions"]["code"] for error in body["errors"]] == ["UNAUTHENTICATED"]
    assert sandbox.calls == []


async def test_gateway_forwards_the_request_id(
    federated_url: str, sandbox: SandboxGateway, caplog: pytest.LogCaptureFixture
) -> None:
    def seen() -> list[str | None]:
        return [
            getattr(r, "path", None) for r in caplog.records if getattr(r, "request_id", None) == "release-train-42"
        ]

    with caplog.at_level(logging.INFO, logger="graph.http"):
        headers = {"Authorization": BEARER, "X-Request-Id": "release-train-42"}
        await post(federated_url, TRAIN, {"versions": ["0.0.1"], "clients": [ALIPAY]}, **headers)
        # Our server logs a request after its last byte is sent, so the gateway may answer before that line exists.
        for _ in range(100):
            if seen():
                break
            await asyncio.sleep(0.02)
    assert seen() == ["/graphql"]


# --- the skip rule --------------------------------------------------------------------------------------------


def test_missing_node_names_what_is_missing(tmp_path: Path) -> None:
    assert missing_node(tmp_path, which=lambda name: None) == "node is not on PATH"
    assert "@apollo/composition is not installed" in (missing_node(tmp_path, which=lambda name: "/bin/node") or "")
    assert "@theguild/federation-composition" in PACKAGES
    for package in PACKAGES:
        (tmp_path / "node_modules" / package).mkdir(parents=True)
        (tmp_path / "node_modules" / package / "package.json").write_text("{}")
    assert missing_node(tmp_path, which=lambda name: "/bin/node") is None


def test_missing_node_skips_locally_and_fails_in_ci() -> None:
    require_node({}, reason=None)
    with pytest.raises(pytest.skip.Exception, match="npm ci"):
        require_node({}, reason="run npm ci")
    with pytest.raises(pytest.fail.Exception, match="CI_REQUIRE_NODE=1"):
        require_node({"CI_REQUIRE_NODE": "1"}, reason="run npm ci")


def test_a_script_that_never_listens_is_reported(node: None, tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="did not start: compose: usage"), started("compose.mjs", logs=tmp_path):
        pass  # pragma: no cover
