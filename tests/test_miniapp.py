"""The mini-program and its versions (SPEC 5b) end to end: the service over HTTP against the sandbox gateway.

Counts and concurrency come from the sandbox's call log and its in-flight counter: what Alipay would have seen.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from graph.app import create_app
from graph.config import Settings
from graph.gateway.credentials import Credentials
from graph.gateway.methods import BASE_INFO, EXPERIENCE, VERSION_DETAIL, VERSION_LIST
from graph.sandbox import DemoCredentials, Fault, SandboxGateway
from graph.sandbox.certs import CertChain
from graph.sandbox.seed import SEED_VERSIONS
from tests.conftest import MERCHANT_TOKEN, OTHER_MERCHANT_TOKEN
from tests.modefixtures import Mode, _modes_gateway, aes_key, cert_chain, env_for, modes_sandbox, modes_url
from tests.servers import serve
from tests.test_app import post
from tests.test_cli import run

__all__ = ["_modes_gateway", "aes_key", "cert_chain", "modes_sandbox", "modes_url"]  # fixtures used by name

ALIPAY = "com.alipay.alipaywallet"
DASHBOARD = Path(__file__).resolve().parent.parent / "graph" / "ide" / "example.graphql"
EVERY_METHOD = """
query($n: Int) {
  miniApp {
    appName
    versions(first: $n) { appVersion status detail { status grayPercentage } experience { status qrCodeUrl } }
  }
}
"""
BASE_INFO_FIELDS = """
{ miniApp { appName appEnglishName appSlogan appDesc appLogo servicePhone serviceEmail categoryNames
            categories { first second } packageNames safeDomains registrationLimitRelease } }
"""
SUMMARY_FIELDS = """
query($b: String!) {
  miniApp {
    versions(bundleId: $b) {
      appVersion bundleId status versionDescription createTime baseAudit promoteAudit canRelease
    }
  }
}
"""
EXPERIENCE_FIELDS = """
query($v: String!, $b: String!) {
  miniAppVersion(appVersion: $v, bundleId: $b) { experience { status qrCodeUrl schemaUrl } }
}
"""
LIST_ONLY = "{ miniApp { versions { appVersion bundleId status versionDescription createTime canRelease } } }"
DETAILS = "{ miniApp { versions { appVersion detail { appName status gmtCreate } } } }"


def apis(sandbox: SandboxGateway) -> list[str | None]:
    return [call.api for call in sandbox.calls]


async def ask(url: str, query: str, variables: dict[str, Any] | None = None, **headers: str) -> dict[str, Any]:
    response = await post(url, query, variables, **headers)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


# ------------------------------------------------------------------------------------------- every mode


@pytest.fixture
def mode_env(
    tmp_path: Path, demo_credentials: DemoCredentials, cert_chain: CertChain, aes_key: bytes, modes_url: str
) -> Callable[[Mode], dict[str, str]]:
    def make(mode: Mode) -> dict[str, str]:
        return env_for(mode, tmp_path, demo_credentials, cert_chain, aes_key, modes_url)

    return make


MODES = [Mode("v2", False, False), Mode("v3", False, False), Mode("v2", True, True), Mode("v3", True, True)]


@pytest.mark.parametrize("mode", MODES, ids=[mode.id for mode in MODES])
async def test_each_method_end_to_end_in_every_mode(
    mode_env: Callable[[Mode], dict[str, str]], modes_sandbox: SandboxGateway, cert_chain: CertChain, mode: Mode
) -> None:
    with serve(create_app(Settings.from_environ(mode_env(mode))), lifespan="on") as url:
        body = await ask(url, EVERY_METHOD, {"n": 2}, **{"X-Alipay-App-Auth-Token": MERCHANT_TOKEN})
    assert "errors" not in body, body
    app = body["data"]["miniApp"]
    assert app["appName"] == "小程序demo"
    assert app["versions"] == [
        {
            "appVersion": "1.1.0-beta",
            "status": "INIT",
            "detail": {"status": "INIT", "grayPercentage": None},
            "experience": {"status": "PACKAGED", "qrCodeUrl": app["versions"][0]["experience"]["qrCodeUrl"]},
        },
        {
            "appVersion": "1.0.0",
            "status": "AUDIT_REJECT",
            "detail": {"status": "AUDIT_REJECT", "grayPercentage": None},
            "experience": {"status": "NOT_EXPERIENCE", "qrCodeUrl": None},
        },
    ]
    assert app["versions"][0]["experience"]["qrCodeUrl"].startswith("https://mobilecodec.alipay.com/show.htm?code=")
    calls = modes_sandbox.calls
    assert sorted(map(str, apis(modes_sandbox))) == sorted(
        [BASE_INFO, VERSION_LIST, VERSION_DETAIL, VERSION_DETAIL, EXPERIENCE, EXPERIENCE]
    )
    for call in calls:
        assert call.outcome == "ok"
        assert (call.protocol, call.app_id, call.encrypted, call.has_app_auth_token) == (
            mode.protocol,
            mode.app_id,
            mode.aes,
            True,
        )
        assert call.app_cert_sn == (cert_chain.app_cert_sn if mode.cert else None)
    if mode.protocol == "v3":
        assert {call.method for call in calls} >= {
            "GET /v3/alipay/open/mini/version/list/query",
            "GET /v3/alipay/open/mini/baseinfo/query",
            "GET /v3/alipay/open/mini/experience/query",
        }


# ------------------------------------------------------------------------------------------- field mapping


async def test_every_base_info_field(graph_url: str, sandbox: SandboxGateway) -> None:
    body = await ask(graph_url, BASE_INFO_FIELDS)
    assert "errors" not in body, body
    assert body["data"]["miniApp"] == {
        "appName": "小程序demo",
        "appEnglishName": "demoexample",
        "appSlogan": "小程序demo简介",
        "appDesc": "小程序demo的相关示例:查询附近门店、领取会员积分、在线下单。",
        "appLogo": "https://mdn.alipayobjects.com/huamei_demo/afts/img/logo-demo.png",
        "servicePhone": "13110101010",
        "serviceEmail": "example@mail.com",
        "categoryNames": "购物_零售门店;生活服务_便民服务;",
        "categories": [{"first": "购物", "second": "零售门店"}, {"first": "生活服务", "second": "便民服务"}],
        "packageNames": ["小程序基础功能包", "会员卡功能包"],
        "safeDomains": ["api.demo-shop.example.com", "img.demo-shop.example.com"],
        "registrationLimitRelease": False,
    }
    assert apis(sandbox) == [BASE_INFO]  # twelve fields, one call


async def test_every_summary_field_newest_first(graph_url: str, sandbox: SandboxGateway) -> None:
    body = await ask(graph_url, SUMMARY_FIELDS, {"b": "com.alibaba.ailabs.genie.webapps"})
    assert "errors" not in body, body
    versions = body["data"]["miniApp"]["versions"]
    assert [v["appVersion"] for v in versions] == ["1.1.0-beta", "1.0.0", "0.1.0", "0.0.2", "0.0.1"]
    assert versions[2] == {
        "appVersion": "0.1.0",
        "bundleId": "com.alibaba.ailabs.genie.webapps",
        "status": "BASE_AUDIT_PASS",
        "versionDescription": "支持在线下单与到店自提。",
        "createTime": "2024-05-20T16:00:00+08:00",
        "baseAudit": "PASS",
        "promoteAudit": "REJECT",
        "canRelease": True,  # upstream the text "true"
    }
    assert (versions[1]["canRelease"], versions[1]["baseAudit"]) == (False, "REJECT")  # the text "false"
    assert versions[0]["baseAudit"] is None
    assert versions[0]["canRelease"] is None
    assert apis(sandbox) == [VERSION_LIST]


async def test_every_experience_field(graph_url: str, sandbox: SandboxGateway) -> None:
    packaged = await ask(graph_url, EXPERIENCE_FIELDS, {"v": "1.1.0-beta", "b": ALIPAY})
    experience = packaged["data"]["miniAppVersion"]["experience"]
    assert experience["status"] == "PACKAGED"  # upstream expVersionPackged (sic)
    assert experience["qrCodeUrl"].startswith("https://mobilecodec.alipay.com/show.htm?code=s4x")
    assert experience["schemaUrl"].startswith("alipays://platformapi/startapp?appId=")
    packing = await ask(graph_url, EXPERIENCE_FIELDS, {"v": "0.1.0", "b": ALIPAY})
    assert packing["data"]["miniAppVersion"]["experience"] == {
        "status": "PACKAGING",
        "qrCodeUrl": None,
        "schemaUrl": None,
    }
    none = await ask(graph_url, EXPERIENCE_FIELDS, {"v": "0.0.1", "b": ALIPAY})
    assert none["data"]["miniAppVersion"]["experience"]["status"] == "NOT_EXPERIENCE"
    assert apis(sandbox).count(EXPERIENCE) == 3


async def test_statuses_and_first_filter_the_list(graph_url: str, sandbox: SandboxGateway) -> None:
    query = """{ miniApp {
        a: versions(statuses: [RELEASE, GRAY]) { appVersion status }
        b: versions(statuses: [GRAY, RELEASE], first: 1) { appVersion }
        c: versions(statuses: []) { appVersion }
        d: versions(bundleId: "com.example.nowhere") { appVersion }
    } }"""
    body = await ask(graph_url, query)
    assert "errors" not in body, body
    app = body["data"]["miniApp"]
    assert app["a"] == [{"appVersion": "0.0.2", "status": "GRAY"}, {"appVersion": "0.0.1", "status": "RELEASE"}]
    assert app["b"] == [{"appVersion": "0.0.2"}]
    assert app["c"] == []
    assert app["d"] == []  # a client with no versions lists none
    assert apis(sandbox) == [VERSION_LIST, VERSION_LIST]  # a and b share one call; c needs none


async def test_arguments_are_checked_before_any_call(graph_url: str, sandbox: SandboxGateway) -> None:
    for arguments, name in (("first: -1", "first"), ("statuses: [UNKNOWN]", "statuses"), ('bundleId: "x"', "bundleId")):
        body = await ask(graph_url, f"{{ miniApp {{ versions({arguments}) {{ appVersion }} }} }}")
        [error] = body["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["extensions"]["argumentName"] == name
        assert body["data"] == {"miniApp": {"versions": None}}
    assert sandbox.calls == []


# ------------------------------------------------------------------------------------------- calls


async def test_list_fields_alone_make_one_call(graph_url: str, sandbox: SandboxGateway) -> None:
    body = await ask(graph_url, LIST_ONLY)
    assert len(body["data"]["miniApp"]["versions"]) == 5
    assert apis(sandbox) == [VERSION_LIST]


async def test_details_of_five_listed_versions_in_flight_together_then_cached(
    start_app: Callable[..., str], sandbox: SandboxGateway
) -> None:
    url = start_app()
    sandbox.latency_s = 0.2
    body = await ask(url, DETAILS)
    assert "errors" not in body, body
    versions = body["data"]["miniApp"]["versions"]
    assert [v["detail"]["status"] for v in versions] == ["INIT", "AUDIT_REJECT", "AUDITING", "GRAY", "RELEASE"]
    assert apis(sandbox) == [VERSION_LIST] + [VERSION_DETAIL] * 5
    assert sandbox.max_in_flight == 5  # the five details at once, after the list
    again = await ask(url, DETAILS)
    assert again["data"] == body["data"]
    # The same calls in another shape: not the response cache, the gateway-answer cache.
    other = await ask(url, "{ miniApp { versions { detail { status } } } }")
    assert next(v["detail"]["status"] for v in other["data"]["miniApp"]["versions"]) == "INIT"
    assert len(sandbox.calls) == 6


async def test_the_dashboard_query_fits_the_default_budget(graph_url: str, sandbox: SandboxGateway) -> None:
    body = await ask(graph_url, DASHBOARD.read_text(encoding="utf-8"))
    assert "errors" not in body, body
    assert len(sandbox.calls) == 12  # base info, the list, five details, five experiences (the demo has five)


async def test_the_budget_refuses_an_over_wide_query_before_any_call(graph_url: str, sandbox: SandboxGateway) -> None:
    # No `first`: up to 20 listed, each with a detail and an experience: 1 + 20 + 20 calls > 30.
    body = await ask(graph_url, "{ miniApp { versions { detail { status } experience { status } } } }")
    [error] = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["setting"] == "GRAPH_MAX_UPSTREAM_CALLS"
    assert error["extensions"]["calls"] == 41
    assert sandbox.calls == []
    fits = await ask(graph_url, "{ miniApp { versions(first: 14) { detail { status } experience { status } } } }")
    assert "errors" not in fits


# ------------------------------------------------------------------------------------------- failures stay local


async def test_a_failing_list_fails_only_its_field(graph_url: str, sandbox: SandboxGateway) -> None:
    sandbox.fail_next(Fault.business_error("APPLICATION_TYPE_NOT_MINIAPP"), method=VERSION_LIST)
    query = '{ miniApp { appName versions { appVersion } } miniAppVersion(appVersion: "0.0.1") { status } }'
    body = await ask(graph_url, query)
    assert body["data"] == {
        "miniApp": {"appName": "小程序demo", "versions": None},
        "miniAppVersion": {"status": "RELEASE"},
    }
    [error] = body["errors"]
    assert error["path"] == ["miniApp", "versions"]
    assert error["extensions"]["code"] == "ALIPAY_BUSINESS_ERROR"
    assert error["extensions"]["alipay"]["subCode"] == "APPLICATION_TYPE_NOT_MINIAPP"


async def test_a_failing_base_info_fails_only_its_fields(graph_url: str, sandbox: SandboxGateway) -> None:
    sandbox.fail_next(Fault.BUSY, times=3, method=BASE_INFO)
    body = await ask(graph_url, "{ miniApp { appName appLogo versions(first: 1) { appVersion } } }")
    assert body["data"] == {"miniApp": {"appName": None, "appLogo": None, "versions": [{"appVersion": "1.1.0-beta"}]}}
    assert sorted(tuple(error["path"]) for error in body["errors"]) == [("miniApp", "appLogo"), ("miniApp", "appName")]
    assert {error["extensions"]["code"] for error in body["errors"]} == {"ALIPAY_UNAVAILABLE"}
    assert apis(sandbox).count(BASE_INFO) == 3  # one call (retried twice) for both fields


async def test_a_failing_detail_fails_only_its_field(graph_url: str, sandbox: SandboxGateway) -> None:
    sandbox.fail_next(Fault.TAMPERED, method=VERSION_DETAIL, app_version="0.0.2")
    body = await ask(
        graph_url, "{ miniApp { versions(first: 5) { appVersion detail { status } experience { status } } } }"
    )
    versions = body["data"]["miniApp"]["versions"]
    assert [v["detail"] is None for v in versions] == [False, False, False, True, False]
    assert all(v["experience"] is not None for v in versions)
    [error] = body["errors"]
    assert error["path"] == ["miniApp", "versions", 3, "detail"]
    assert error["extensions"]["code"] == "ALIPAY_BAD_SIGNATURE"


async def test_a_failing_experience_fails_only_its_field(graph_url: str, sandbox: SandboxGateway) -> None:
    body = await ask(graph_url, EXPERIENCE_FIELDS, {"v": "9.9.9", "b": ALIPAY})
    assert body["data"] == {"miniAppVersion": None}  # the detail fails first: no such version
    sandbox.fail_next(Fault.business_error("MINI_APP_PACKAGE_INFO_NOT_EXIST"), method=EXPERIENCE)
    body = await ask(graph_url, EXPERIENCE_FIELDS, {"v": "0.0.2", "b": ALIPAY})
    assert body["data"] == {"miniAppVersion": {"experience": None}}
    assert body["errors"][0]["extensions"]["alipay"]["subCode"] == "MINI_APP_PACKAGE_INFO_NOT_EXIST"


# ------------------------------------------------------------------------------------------- tenants, enums


@pytest.fixture
def tenant_url(credentials: Credentials, demo_credentials: DemoCredentials) -> Iterator[tuple[str, SandboxGateway]]:
    """A sandbox where each merchant has versions of its own (the app itself keeps the seeded ones); the other
    merchant's trial build has a status this service does not know, new in each test (unknown values are logged
    once per process)."""
    mine = {key: record for key, record in SEED_VERSIONS.items() if key[0] == "0.0.1"}
    theirs = {("2.0.0", ALIPAY): {**SEED_VERSIONS["0.0.2", ALIPAY], "app_version": "2.0.0"}}
    gateway = SandboxGateway(
        alipay_private_key=demo_credentials.alipay_private_key,
        apps={demo_credentials.app_id: demo_credentials.app_public_key},
        tenants={MERCHANT_TOKEN: mine, OTHER_MERCHANT_TOKEN: theirs},
        experiences={("2.0.0", ALIPAY): {"status": f"expVersionFrozen{uuid.uuid4().hex[:8]}"}},
    )
    with serve(gateway.app) as sandbox_url:
        settings = Settings(credentials=credentials, gateway_url=f"{sandbox_url}/gateway.do", allow_anonymous=True)
        with serve(create_app(settings), lifespan="on") as url:
            yield url, gateway


async def test_tenants_never_share_the_new_answers(tenant_url: tuple[str, SandboxGateway]) -> None:
    url, gateway = tenant_url
    query = "{ miniApp { appName versions { appVersion experience { status } } } }"
    tenants: list[dict[str, str]] = [
        {"X-Alipay-App-Auth-Token": MERCHANT_TOKEN},
        {"X-Alipay-App-Auth-Token": OTHER_MERCHANT_TOKEN},
        {},
    ]
    seen = [
        [v["appVersion"] for v in (await ask(url, query, None, **h))["data"]["miniApp"]["versions"]] for h in tenants
    ]
    assert seen == [["0.0.1"], ["2.0.0"], ["1.1.0-beta", "1.0.0", "0.1.0", "0.0.2", "0.0.1"]]
    first_round = len(gateway.calls)
    assert first_round == (2 + 1) + (2 + 1) + (2 + 5)  # base info and list per tenant, one experience per version
    for api in (BASE_INFO, VERSION_LIST):
        assert len({c.app_auth_token_digest for c in gateway.calls if c.api == api}) == 3
    for headers in tenants:
        await ask(
            url, "{ miniApp { appName versions { appVersion experience { status } } } __typename }", None, **headers
        )
    assert len(gateway.calls) == first_round  # each tenant's second ask hit its own entries


async def test_unknown_enum_values_become_unknown_logged_once(
    tenant_url: tuple[str, SandboxGateway], caplog: pytest.LogCaptureFixture
) -> None:
    url, gateway = tenant_url
    query = "{ miniApp { versions { experience { status } } } }"
    with caplog.at_level(logging.WARNING, logger="graph.types._coerce"):
        for _ in range(2):
            body = await ask(
                url, query, None, **{"X-Alipay-App-Auth-Token": OTHER_MERCHANT_TOKEN, "Cache-Control": "no-cache"}
            )
            assert body["data"]["miniApp"]["versions"] == [{"experience": {"status": "UNKNOWN"}}]
    [unknown] = [call for call in gateway.calls if call.api == EXPERIENCE][:1]
    assert unknown.outcome == "ok"
    warnings = [r.getMessage() for r in caplog.records if "expVersionFrozen" in r.getMessage()]
    assert len(warnings) == 1
    assert "ExperienceStatus" in warnings[0]


# ------------------------------------------------------------------------------------------- the command line


def test_cli_query_with_the_new_fields() -> None:
    result = run("query", "{ miniApp { appName versions(first: 2) { appVersion experience { status } } } }", "--demo")
    assert result.returncode == 0, result.stderr
    app = json.loads(result.stdout)["data"]["miniApp"]
    assert app["appName"] == "小程序demo"
    assert [v["appVersion"] for v in app["versions"]] == ["1.1.0-beta", "1.0.0"]
