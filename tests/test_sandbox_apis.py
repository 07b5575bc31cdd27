"""The sandbox's version list, base info and experience APIs through the real v2 and v3 clients over HTTP:
their answers agree with the detail query, their arguments are checked as Alipay documents, faults aim per method."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from graph.gateway.base import GatewayClient
from graph.gateway.client import AlipayClient
from graph.gateway.credentials import Credentials
from graph.gateway.errors import BusinessError, GatewayUnavailable
from graph.gateway.methods import BASE_INFO, EXPERIENCE, VERSION_DETAIL, VERSION_LIST, v3_path
from graph.gateway.v3 import AlipayV3Client
from graph.sandbox import KNOWN_BUNDLE_IDS, Fault, SandboxGateway
from graph.sandbox.apis import version_order
from graph.sandbox.seed import SEED_BASE_INFO
from tests.conftest import NO_WAIT

ALL = "INIT,AUDITING,WAIT_RELEASE,BASE_AUDIT_PASS,AUDIT_REJECT,RELEASE,GRAY,OFFLINE,AUDIT_OFFLINE"


@pytest.fixture(params=["v2", "v3"])
async def client(
    request: pytest.FixtureRequest, credentials: Credentials, gateway_url: str
) -> AsyncIterator[GatewayClient]:
    if request.param == "v2":
        made: GatewayClient = AlipayClient(credentials, gateway_url=gateway_url, backoff=NO_WAIT, retries=0)
    else:
        base = gateway_url.removesuffix("/gateway.do")
        made = AlipayV3Client(credentials, gateway_url=base, backoff=NO_WAIT, retries=0)
    yield made
    await made.aclose()


def test_v3_paths_follow_the_method_names() -> None:
    assert v3_path(VERSION_LIST) == "/v3/alipay/open/mini/version/list/query"
    assert v3_path(BASE_INFO) == "/v3/alipay/open/mini/baseinfo/query"
    assert v3_path(EXPERIENCE) == "/v3/alipay/open/mini/experience/query"


def test_versions_sort_newest_first() -> None:
    found = sorted(["0.2.0", "0.10.0", "1.1.0-beta", "1.1.0", "1.0.0", "x.y"], key=version_order, reverse=True)
    assert found == ["1.1.0", "1.1.0-beta", "1.0.0", "0.10.0", "0.2.0", "x.y"]


async def test_every_listed_version_has_a_detail_and_a_trial_build(
    client: GatewayClient, sandbox: SandboxGateway
) -> None:
    for bundle_id in KNOWN_BUNDLE_IDS:
        listed = await client.call(VERSION_LIST, {"bundle_id": bundle_id, "version_status": ALL})
        infos = listed["app_version_infos"]
        assert [info["app_version"] for info in infos] == ["1.1.0-beta", "1.0.0", "0.1.0", "0.0.2", "0.0.1"]
        assert ("app_versions" in listed) == (bundle_id == "com.alipay.alipaywallet")  # legacy: Alipay only
        for info in infos:
            args = {"app_version": info["app_version"], "bundle_id": bundle_id}
            detail = await client.call(VERSION_DETAIL, args)
            assert (info["version_status"], info["create_time"]) == (detail["status"], detail["gmt_create"])
            assert info.get("can_release") == detail.get("can_release")  # the text "true"/"false"
            assert (await client.call(EXPERIENCE, args))["status"] in {
                "expVersionPackged",
                "expVersionPackaging",
                "notExpVersion",
            }
    assert {call.outcome for call in sandbox.calls} == {"ok"}


async def test_the_list_asks_for_statuses(client: GatewayClient, sandbox: SandboxGateway) -> None:
    # "不填默认不返回": without version_status nothing is listed.
    assert (await client.call(VERSION_LIST, {}))["app_version_infos"] == []
    gray = await client.call(VERSION_LIST, {"bundle_id": "com.alibaba.android.rimet", "version_status": "GRAY,INIT"})
    assert [(i["app_version"], i["version_status"]) for i in gray["app_version_infos"]] == [
        ("1.1.0-beta", "INIT"),
        ("0.0.2", "GRAY"),
    ]
    nowhere = await client.call(VERSION_LIST, {"bundle_id": "com.example.nowhere", "version_status": ALL})
    assert nowhere["app_version_infos"] == []


async def test_base_info_takes_no_arguments(client: GatewayClient, sandbox: SandboxGateway) -> None:
    answer = await client.call(BASE_INFO, {})
    assert {name: answer[name] for name in SEED_BASE_INFO} == dict(SEED_BASE_INFO)
    assert sandbox.calls[-1].api == BASE_INFO


@pytest.mark.parametrize(
    ("args", "sub_code"),
    [
        ({"bundle_id": "com.alipay.alipaywallet"}, "APP_VERSION_IS_BLANK"),
        ({"app_version": " ", "bundle_id": "com.alipay.alipaywallet"}, "APP_VERSION_IS_BLANK"),
        ({"app_version": "0.0.1", "bundle_id": "com.example.nowhere"}, "INVALID_PARAMS"),
        ({"app_version": "9.9.9", "bundle_id": "com.alipay.alipaywallet"}, "MINI_APP_PACKAGE_INFO_NOT_EXIST"),
    ],
)
async def test_the_experience_query_checks_its_arguments(
    client: GatewayClient, sandbox: SandboxGateway, args: dict[str, str], sub_code: str
) -> None:
    with pytest.raises(BusinessError) as refused:
        await client.call(EXPERIENCE, args)
    assert refused.value.sub_code == sub_code
    assert refused.value.signed


async def test_faults_aim_at_one_method(client: GatewayClient, sandbox: SandboxGateway) -> None:
    sandbox.fail_next(Fault.BUSY, method=EXPERIENCE)
    await client.call(VERSION_LIST, {"version_status": "INIT"})  # not consumed by another method
    await client.version_detail("0.0.1", "com.alipay.alipaywallet")
    with pytest.raises(GatewayUnavailable):
        await client.call(EXPERIENCE, {"app_version": "0.0.1"})
    assert [call.outcome for call in sandbox.calls] == ["ok", "ok", "BUSY"]
    assert [call.api for call in sandbox.calls] == [VERSION_LIST, VERSION_DETAIL, EXPERIENCE]
