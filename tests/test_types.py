from __future__ import annotations

import copy
import enum
import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import strawberry
from graphql import GraphQLEnumType, GraphQLObjectType

from graph.execution.schema import create_schema
from graph.types.app import MiniAppCategory, MiniAppVersionSummary, categories
from graph.types.enums import (
    AuditResult,
    ExperienceStatus,
    MiniAppVersionStatus,
    PackageOpenType,
    PackageStatus,
    ScanResult,
    ServiceRegionType,
    parse_enum,
)
from graph.types.experience import MiniAppExperience
from graph.types.version import AuditMemo, AuditRecord, CategoryInfo, MiniAppVersion, PackageInfo, RegionInfo

BEIJING = timezone(timedelta(hours=8))
NOON = datetime(2017, 12, 12, 12, 0, tzinfo=BEIJING)
WALLET = "com.alipay.alipaywallet"

FIELDS = [
    "app_version",
    "app_name",
    "app_english_name",
    "app_logo",
    "version_desc",
    "gray_strategy",
    "status",
    "reject_reason",
    "scan_result",
    "gmt_create",
    "gmt_apply_audit",
    "gmt_online",
    "gmt_offline",
    "app_desc",
    "gmt_audit_end",
    "service_region_type",
    "service_region_info",
    "screen_shot_list",
    "app_slogan",
    "memo",
    "service_phone",
    "service_email",
    "mini_app_category_info_list",
    "package_info_list",
    "mini_category_info_list",
    "base_audit",
    "promote_audit",
    "can_release",
    "base_audit_record",
    "promote_audit_record",
]

CATEGORY = {
    "first_category_id": "XS1020",
    "first_category_name": "购物",
    "second_category_id": "XS2167",
    "second_category_name": "零售门店",
    "third_category_id": "XS3175",
    "third_category_name": "服饰箱包门店",
}
AUDIT_RECORD = {
    "audit_images": ["xxx.png"],
    "memos": [{"memo": "js错误检测:发现js错误,请及时优化", "memo_image_list": ["xxx.png"]}],
}
# The seed doc's example answer, with the upper-case enum values the gateway really sends.
NODE: dict[str, Any] = {
    "code": "10000",
    "msg": "Success",
    "app_version": "0.0.1",
    "app_name": "小程序demo",
    "app_english_name": "demoexample",
    "app_logo": "http://image.aaaa.alipay.com",
    "version_desc": "这是一个简单的版本描述",
    "gray_strategy": "p10",
    "status": "INIT",
    "reject_reason": "名称太宽泛",
    "scan_result": "True",
    "gmt_create": "2017-12-12 12:00:00",
    "gmt_apply_audit": "2017-12-12 12:00:00",
    "gmt_online": "2017-12-12 12:00:00",
    "gmt_offline": "2017-12-12 12:00:00",
    "app_desc": "小程序demo的相关示例",
    "gmt_audit_end": "2017-12-12 12:00:00",
    "service_region_type": "LOCATION",
    "service_region_info": [
        {
            "province_code": "310000",
            "province_name": "浙江省",
            "city_code": "310000",
            "city_name": "杭州市",
            "area_code": "311100",
            "area_name": "余杭区",
        }
    ],
    "screen_shot_list": ["http://image.aaa.alipay.com"],
    "app_slogan": "小程序demo简介",
    "memo": "这是一个demo示例",
    "service_phone": "13110101010",
    "service_email": "example@mail.com",
    "mini_app_category_info_list": [CATEGORY],
    "package_info_list": [
        {
            "package_name": "小程序基础功能包",
            "package_desc": "通用能力",
            "doc_url": "http://doc.aaa.alipay.com",
            "status": "VALID",
            "package_open_type": "APPLY",
        }
    ],
    "mini_category_info_list": [CATEGORY],
    "base_audit": "PASS",
    "promote_audit": "REJECT",
    "can_release": "true",
    "base_audit_record": AUDIT_RECORD,
    "promote_audit_record": {"audit_images": [], "memos": [{"memo": "营销驳回"}]},
}

ENUMS: tuple[type[enum.Enum], ...] = (
    MiniAppVersionStatus,
    ScanResult,
    ServiceRegionType,
    PackageStatus,
    PackageOpenType,
    AuditResult,
)


def version(node: dict[str, Any], app_version: str = "0.0.1", bundle_id: str = WALLET) -> MiniAppVersion:
    return MiniAppVersion.from_gateway(node, app_version=app_version, bundle_id=bundle_id)


def warnings_about(caplog: pytest.LogCaptureFixture, needle: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("graph.types") and r.levelno == logging.WARNING and needle in r.getMessage()
    ]


def mixed_case(word: str) -> str:
    return "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(word))


def test_the_node_names_exactly_the_documented_fields() -> None:
    assert len(FIELDS) == 30
    assert set(NODE) == {*FIELDS, "code", "msg"}


def test_every_field_is_mapped_from_a_full_node() -> None:
    v = version(NODE)
    category = CategoryInfo(
        first_category_id="XS1020",
        first_category_name="购物",
        second_category_id="XS2167",
        second_category_name="零售门店",
        third_category_id="XS3175",
        third_category_name="服饰箱包门店",
    )
    assert v.app_version == "0.0.1"
    assert v.bundle_id == WALLET
    assert v.app_name == "小程序demo"
    assert v.app_english_name == "demoexample"
    assert v.app_logo == "http://image.aaaa.alipay.com"
    assert v.version_desc == "这是一个简单的版本描述"
    assert v.gray_strategy == "p10"
    assert v.gray_percentage == 10
    assert v.status is MiniAppVersionStatus.INIT
    assert v.reject_reason == "名称太宽泛"
    assert v.scan_result is ScanResult.PASSED
    assert v.gmt_create == NOON
    assert v.gmt_apply_audit == NOON
    assert v.gmt_online == NOON
    assert v.gmt_offline == NOON
    assert v.app_desc == "小程序demo的相关示例"
    assert v.gmt_audit_end == NOON
    assert v.service_region_type is ServiceRegionType.LOCATION
    assert v.service_region_info == [
        RegionInfo(
            province_code="310000",
            province_name="浙江省",
            city_code="310000",
            city_name="杭州市",
            area_code="311100",
            area_name="余杭区",
        )
    ]
    assert v.screen_shot_list == ["http://image.aaa.alipay.com"]
    assert v.app_slogan == "小程序demo简介"
    assert v.memo == "这是一个demo示例"
    assert v.service_phone == "13110101010"
    assert v.service_email == "example@mail.com"
    assert v.mini_app_category_info_list == [category]
    assert v.package_info_list == [
        PackageInfo(
            package_name="小程序基础功能包",
            package_desc="通用能力",
            doc_url="http://doc.aaa.alipay.com",
            status=PackageStatus.VALID,
            package_open_type=PackageOpenType.APPLY,
        )
    ]
    assert v.mini_category_info_list == [category]
    assert v.base_audit is AuditResult.PASS
    assert v.promote_audit is AuditResult.REJECT
    assert v.can_release is True
    assert v.base_audit_record == AuditRecord(
        audit_images=["xxx.png"],
        memos=[AuditMemo(memo="js错误检测:发现js错误,请及时优化", memo_image_list=["xxx.png"])],
    )
    assert v.promote_audit_record == AuditRecord(
        audit_images=[], memos=[AuditMemo(memo="营销驳回", memo_image_list=None)]
    )


def test_the_key_is_the_one_asked_for_whatever_the_node_echoes() -> None:
    v = version({**NODE, "app_version": "9.9.9", "bundle_id": "com.example.other"}, "0.0.2", "com.amap.app")
    assert (v.app_version, v.bundle_id) == ("0.0.2", "com.amap.app")
    assert version({}, "1.2.3", "com.alipay.iot.xpaas").app_version == "1.2.3"


@pytest.mark.parametrize(("kind", "member"), [(kind, member) for kind in ENUMS for member in kind])
@pytest.mark.parametrize("spell", [str.lower, str.upper, mixed_case, lambda s: f"  {s.lower()}\t"])
def test_every_enum_value_is_read_in_any_case(
    kind: type[enum.Enum], member: enum.Enum, spell: Callable[[str], str], caplog: pytest.LogCaptureFixture
) -> None:
    assert parse_enum(kind, spell(member.name)) is member
    assert not warnings_about(caplog, "UNKNOWN")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("True", ScanResult.PASSED),
        ("true", ScanResult.PASSED),
        ("TRUE", ScanResult.PASSED),
        (True, ScanResult.PASSED),
        ("False", ScanResult.FAILED),
        ("false", ScanResult.FAILED),
        (False, ScanResult.FAILED),
        ("nan", ScanResult.SCANNING),
        ("NAN", ScanResult.SCANNING),
        ("NaN", ScanResult.SCANNING),
        (float("nan"), ScanResult.SCANNING),  # json.loads reads a bare NaN as a float
    ],
)
def test_scan_result_reads_upstream_true_false_nan(raw: object, expected: ScanResult) -> None:
    assert version({"scan_result": raw}).scan_result is expected


@pytest.mark.parametrize("raw", ["GLOBLE", "globle", "Globle", "GLOBAL", "global"])
def test_globle_is_global(raw: str) -> None:
    assert version({"service_region_type": raw}).service_region_type is ServiceRegionType.GLOBAL


def test_an_unknown_enum_value_is_unknown_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    node = {"status": "PROMOTE_AUDIT_REJECT_X1", "package_info_list": [{"status": "PROMOTE_AUDIT_REJECT_X1"}]}
    for _ in range(3):
        v = version(node)
        assert v.status is MiniAppVersionStatus.UNKNOWN
        assert v.package_info_list is not None
        assert v.package_info_list[0].status is PackageStatus.UNKNOWN
    logged = warnings_about(caplog, "PROMOTE_AUDIT_REJECT_X1")
    assert len(logged) == 2  # once per (enum, value)
    assert any("MiniAppVersionStatus" in m for m in logged)
    assert any("PackageStatus" in m for m in logged)


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        (ScanResult, "maybe-x2"),
        (ServiceRegionType, "MARS-x2"),
        (PackageOpenType, "GIFT-x2"),
        (AuditResult, "PENDING-x2"),
        (MiniAppVersionStatus, 42002),
        (AuditResult, {"value": "PASS-x2"}),
        (ScanResult, ["True-x2"]),
    ],
)
def test_unknown_values_of_any_json_type_are_unknown(
    kind: type[enum.Enum], raw: object, caplog: pytest.LogCaptureFixture
) -> None:
    assert parse_enum(kind, raw) is kind.__members__["UNKNOWN"]
    assert parse_enum(kind, raw) is kind.__members__["UNKNOWN"]
    assert len(warnings_about(caplog, "x2" if not isinstance(raw, int) else "42002")) == 1


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_an_absent_or_blank_enum_value_is_null(raw: object, caplog: pytest.LogCaptureFixture) -> None:
    assert parse_enum(MiniAppVersionStatus, raw) is None
    assert not caplog.records


def test_the_memory_of_logged_values_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    parse_enum(AuditResult, "bounded-0")
    for i in range(1, 1025):
        parse_enum(AuditResult, f"bounded-{i}")
    parse_enum(AuditResult, "bounded-1024")  # still remembered
    parse_enum(AuditResult, "bounded-0")  # forgotten: the oldest of 1025
    assert len(warnings_about(caplog, "bounded-")) == 1026


def test_a_huge_value_is_logged_short(caplog: pytest.LogCaptureFixture) -> None:
    assert parse_enum(AuditResult, "HUGE\n" + "X" * 100_000) is AuditResult.UNKNOWN
    (message,) = warnings_about(caplog, "HUGE")
    assert len(message) < 300
    assert "\n" not in message


@pytest.mark.parametrize(
    ("raw", "percent"),
    [
        ("p10", 10),
        ("P30", 30),
        ("p50", 50),
        (" p0 ", 0),
        ("p100", 100),
        ("p200", None),
        ("p1000", None),
        ("p", None),
        ("10", None),
        ("p10%", None),
        ("garbage", None),
        ("p\u0661\u0660", None),  # Arabic-Indic digits are not a percentage
        (10, None),
        (None, None),
    ],
)
def test_gray_percentage(raw: object, percent: int | None) -> None:
    v = version({"gray_strategy": raw})
    assert v.gray_percentage == percent
    assert v.gray_strategy == (None if raw is None else str(raw))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        (" True ", True),
        (True, True),
        ("false", False),
        ("False", False),
        (False, False),
        ("yes", None),
        ("", None),
        (1, None),
        ({"true": True}, None),
        (None, None),
    ],
)
def test_can_release(raw: object, expected: bool | None) -> None:
    assert version({"can_release": raw}).can_release is expected


def test_dates_are_beijing_time() -> None:
    v = version(NODE)
    for value in (v.gmt_create, v.gmt_apply_audit, v.gmt_online, v.gmt_offline, v.gmt_audit_end):
        assert value == datetime(2017, 12, 12, 12, 0, tzinfo=BEIJING)
        assert value is not None
        assert value.utcoffset() == timedelta(hours=8)
        assert value.isoformat() == "2017-12-12T12:00:00+08:00"


def test_a_date_with_its_own_offset_is_moved_to_beijing_time() -> None:
    gmt_online = version({"gmt_online": "2017-12-12T04:00:00Z"}).gmt_online
    assert gmt_online is not None
    assert gmt_online.isoformat() == "2017-12-12T12:00:00+08:00"


@pytest.mark.parametrize(
    "raw",
    [
        "2017-13-12 12:00:00",
        "yesterday",
        "12/12/2017",
        1513051200000,
        {"date": "2017-12-12"},
        "0001-01-01T00:00:00+14:00",
    ],
)
def test_a_bad_date_is_null_and_logged_once(raw: object, caplog: pytest.LogCaptureFixture) -> None:
    assert version({"gmt_audit_end": raw}).gmt_audit_end is None
    assert version({"gmt_audit_end": raw}).gmt_audit_end is None
    assert len(warnings_about(caplog, "gmt_audit_end")) == 1


@pytest.mark.parametrize("raw", [None, "", "  "])
def test_an_absent_or_blank_date_is_null_silently(raw: object, caplog: pytest.LogCaptureFixture) -> None:
    assert version({"gmt_offline": raw}).gmt_offline is None
    assert not caplog.records


def test_absent_fields_are_null() -> None:
    v = version({"code": "10000", "msg": "Success"})
    for name in FIELDS:
        if name != "app_version":
            assert getattr(v, name) is None, name
    assert v.gray_percentage is None
    assert v.bundle_id == WALLET


def test_json_null_fields_are_null() -> None:
    v = version(dict.fromkeys(FIELDS))
    assert all(getattr(v, name) is None for name in FIELDS if name != "app_version")


def test_absent_lists_are_null_and_empty_lists_are_empty() -> None:
    lists = ["service_region_info", "screen_shot_list", "mini_app_category_info_list"]
    lists += ["package_info_list", "mini_category_info_list"]
    empty = version({name: [] for name in lists} | {"base_audit_record": {"audit_images": [], "memos": []}})
    absent = version({"base_audit_record": {}, "promote_audit_record": {"memos": [{}]}})
    for name in lists:
        assert getattr(empty, name) == [], name
        assert getattr(absent, name) is None, name
    assert empty.base_audit_record == AuditRecord(audit_images=[], memos=[])
    assert absent.base_audit_record == AuditRecord(audit_images=None, memos=None)
    assert absent.promote_audit_record == AuditRecord(
        audit_images=None, memos=[AuditMemo(memo=None, memo_image_list=None)]
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "http://a.alipay.com/1.png,http://a.alipay.com/2.png",
            ["http://a.alipay.com/1.png", "http://a.alipay.com/2.png"],
        ),
        (" http://a/1.png , ,http://a/2.png,", ["http://a/1.png", "http://a/2.png"]),
        ("http://a/1.png", ["http://a/1.png"]),
        ("", []),
    ],
)
def test_a_screenshot_string_is_comma_separated(raw: str, expected: list[str]) -> None:
    assert version({"screen_shot_list": raw}).screen_shot_list == expected


def test_wrong_json_types_never_raise() -> None:
    garbage: dict[str, Any] = {name: {"unexpected": [1, 2]} for name in FIELDS}
    v = version(garbage)
    assert v.app_name is None
    assert v.screen_shot_list is None
    assert v.service_region_info is None
    assert v.base_audit_record == AuditRecord(audit_images=None, memos=None)
    assert v.status is MiniAppVersionStatus.UNKNOWN

    numbers = version(dict.fromkeys(FIELDS, 12))
    assert numbers.app_name == "12"
    assert numbers.service_phone == "12"
    assert numbers.screen_shot_list is None
    assert numbers.base_audit_record is None
    assert numbers.can_release is None

    items = version(
        {
            "app_name": True,
            "memo": 1.5,
            "service_phone": 10**5000,  # longer than Python will print
            "screen_shot_list": ["http://a/1.png", None, 3, False, {"url": "x"}, ["y"]],
            "service_region_info": ["浙江省", None, 7, {"province_name": ["浙江省"], "city_code": 330100}],
            "package_info_list": [{"status": None, "package_open_type": "order"}, "VALID"],
            "base_audit_record": {"audit_images": "a.png,b.png", "memos": [{"memo_image_list": {}}, "memo"]},
            "promote_audit_record": ["not", "an", "object"],
        }
    )
    assert items.app_name == "true"
    assert items.memo == "1.5"
    assert items.service_phone is None
    assert items.screen_shot_list == ["http://a/1.png", "3", "false"]
    assert items.service_region_info == [
        RegionInfo(
            province_code=None,
            province_name=None,
            city_code="330100",
            city_name=None,
            area_code=None,
            area_name=None,
        )
    ]
    assert items.package_info_list == [
        PackageInfo(
            package_name=None, package_desc=None, doc_url=None, status=None, package_open_type=PackageOpenType.ORDER
        )
    ]
    assert items.base_audit_record == AuditRecord(
        audit_images=["a.png", "b.png"], memos=[AuditMemo(memo=None, memo_image_list=None)]
    )
    assert items.promote_audit_record is None


def test_the_node_is_not_modified() -> None:
    before = copy.deepcopy(NODE)
    version(NODE)
    assert before == NODE


# A tiny federation schema around the type, to see it the way clients will.
@strawberry.type
class Query:
    @strawberry.field
    def version(self) -> MiniAppVersion:
        return MiniAppVersion.from_gateway(NODE, app_version="0.0.1", bundle_id=WALLET)


SCHEMA = strawberry.federation.Schema(query=Query)
OUR_TYPES = {
    "MiniAppVersion": GraphQLObjectType,
    "RegionInfo": GraphQLObjectType,
    "CategoryInfo": GraphQLObjectType,
    "PackageInfo": GraphQLObjectType,
    "AuditMemo": GraphQLObjectType,
    "AuditRecord": GraphQLObjectType,
    "MiniAppVersionStatus": GraphQLEnumType,
    "ScanResult": GraphQLEnumType,
    "ServiceRegionType": GraphQLEnumType,
    "PackageStatus": GraphQLEnumType,
    "PackageOpenType": GraphQLEnumType,
    "AuditResult": GraphQLEnumType,
}
SPEC_FIELDS = {
    "appVersion": "String!",
    "bundleId": "String!",
    **dict.fromkeys(
        [
            "appName",
            "appEnglishName",
            "appLogo",
            "versionDesc",
            "rejectReason",
            "appDesc",
            "appSlogan",
            "memo",
            "servicePhone",
            "serviceEmail",
            "grayStrategy",
        ],
        "String",
    ),
    "grayPercentage": "Int",
    "status": "MiniAppVersionStatus",
    "scanResult": "ScanResult",
    **dict.fromkeys(["gmtCreate", "gmtApplyAudit", "gmtOnline", "gmtOffline", "gmtAuditEnd"], "DateTime"),
    "serviceRegionType": "ServiceRegionType",
    "serviceRegionInfo": "[RegionInfo!]",
    "screenShotList": "[String!]",
    "miniAppCategoryInfoList": "[CategoryInfo!]",
    "miniCategoryInfoList": "[CategoryInfo!]",
    "packageInfoList": "[PackageInfo!]",
    "baseAudit": "AuditResult",
    "promoteAudit": "AuditResult",
    "canRelease": "Boolean",
    "baseAuditRecord": "AuditRecord",
    "promoteAuditRecord": "AuditRecord",
    "experience": "MiniAppExperience",
}
SPEC_ENUMS = {
    "MiniAppVersionStatus": (
        "INIT AUDITING WAIT_RELEASE BASE_AUDIT_PASS AUDIT_REJECT RELEASE GRAY OFFLINE AUDIT_OFFLINE"
    ),
    "ScanResult": "PASSED FAILED SCANNING",
    "ServiceRegionType": "GLOBAL CHINA LOCATION",
    "PackageStatus": "VALID AUDIT INVALID",
    "PackageOpenType": "APPLY ORDER DEFAULT",
    "AuditResult": "PASS REJECT",
}
VERSION_QUERY = """
query {
  version {
    appVersion bundleId appName grayStrategy grayPercentage status scanResult
    gmtCreate gmtApplyAudit gmtOnline gmtOffline gmtAuditEnd
    serviceRegionType serviceRegionInfo { provinceName cityName areaCode }
    screenShotList
    miniAppCategoryInfoList { firstCategoryName thirdCategoryId }
    packageInfoList { packageName status packageOpenType docUrl }
    baseAudit promoteAudit canRelease
    baseAuditRecord { auditImages memos { memo memoImageList } }
  }
}
"""


def test_the_sdl_declares_the_entity_key() -> None:
    assert 'type MiniAppVersion @key(fields: "appVersion bundleId")' in SCHEMA.as_str()


def test_the_fields_are_the_contract() -> None:
    mini_app_version = SCHEMA._schema.type_map["MiniAppVersion"]
    assert isinstance(mini_app_version, GraphQLObjectType)
    assert {name: str(field.type) for name, field in mini_app_version.fields.items()} == SPEC_FIELDS
    for name, values in SPEC_ENUMS.items():
        graphql_enum = SCHEMA._schema.type_map[name]
        assert isinstance(graphql_enum, GraphQLEnumType)
        assert list(graphql_enum.values) == [*values.split(), "UNKNOWN"]


def test_every_type_field_and_enum_value_has_a_description() -> None:
    type_map = SCHEMA._schema.type_map
    for name, kind in OUR_TYPES.items():
        graphql_type = type_map[name]
        assert isinstance(graphql_type, kind)
        assert graphql_type.description, name
        if isinstance(graphql_type, GraphQLObjectType):
            for field_name, field in graphql_type.fields.items():
                assert field.description, f"{name}.{field_name}"
        if isinstance(graphql_type, GraphQLEnumType):
            for value_name, value in graphql_type.values.items():
                assert value.description, f"{name}.{value_name}"


async def test_a_query_returns_iso_dates_and_enum_names() -> None:
    result = await SCHEMA.execute(VERSION_QUERY)
    assert result.errors is None
    assert result.data == {
        "version": {
            "appVersion": "0.0.1",
            "bundleId": WALLET,
            "appName": "小程序demo",
            "grayStrategy": "p10",
            "grayPercentage": 10,
            "status": "INIT",
            "scanResult": "PASSED",
            **dict.fromkeys(
                ["gmtCreate", "gmtApplyAudit", "gmtOnline", "gmtOffline", "gmtAuditEnd"], "2017-12-12T12:00:00+08:00"
            ),
            "serviceRegionType": "LOCATION",
            "serviceRegionInfo": [{"provinceName": "浙江省", "cityName": "杭州市", "areaCode": "311100"}],
            "screenShotList": ["http://image.aaa.alipay.com"],
            "miniAppCategoryInfoList": [{"firstCategoryName": "购物", "thirdCategoryId": "XS3175"}],
            "packageInfoList": [
                {
                    "packageName": "小程序基础功能包",
                    "status": "VALID",
                    "packageOpenType": "APPLY",
                    "docUrl": "http://doc.aaa.alipay.com",
                }
            ],
            "baseAudit": "PASS",
            "promoteAudit": "REJECT",
            "canRelease": True,
            "baseAuditRecord": {
                "auditImages": ["xxx.png"],
                "memos": [{"memo": "js错误检测:发现js错误,请及时优化", "memoImageList": ["xxx.png"]}],
            },
        }
    }


# SPEC 5b: the mini-program, its version summaries and trial builds, in the service's own schema.
SPEC_5B_FIELDS = {
    "MiniApp": {
        **dict.fromkeys(
            [
                "appName",
                "appEnglishName",
                "appSlogan",
                "appDesc",
                "appLogo",
                "servicePhone",
                "serviceEmail",
                "categoryNames",
            ],
            "String",
        ),
        "categories": "[MiniAppCategory!]",
        "packageNames": "[String!]",
        "safeDomains": "[String!]",
        "registrationLimitRelease": "Boolean",
        "versions": "[MiniAppVersionSummary!]",
    },
    "MiniAppCategory": {"first": "String", "second": "String"},
    "MiniAppVersionSummary": {
        "appVersion": "String!",
        "bundleId": "String!",
        "status": "MiniAppVersionStatus",
        "versionDescription": "String",
        "createTime": "DateTime",
        "baseAudit": "AuditResult",
        "promoteAudit": "AuditResult",
        "canRelease": "Boolean",
        "detail": "MiniAppVersion",
        "experience": "MiniAppExperience",
    },
    "MiniAppExperience": {"status": "ExperienceStatus", "qrCodeUrl": "String", "schemaUrl": "String"},
}


def test_the_mini_app_fields_are_the_contract() -> None:
    schema = create_schema()._schema
    query = schema.query_type
    assert query is not None
    assert str(query.fields["miniApp"].type) == "MiniApp!"
    for type_name, fields in SPEC_5B_FIELDS.items():
        graphql_type = schema.type_map[type_name]
        assert isinstance(graphql_type, GraphQLObjectType)
        assert graphql_type.description, type_name
        assert {name: str(field.type) for name, field in graphql_type.fields.items()} == fields
        assert all(field.description for field in graphql_type.fields.values()), type_name
    mini_app = schema.type_map["MiniApp"]
    assert isinstance(mini_app, GraphQLObjectType)
    versions = mini_app.fields["versions"]
    assert {name: str(arg.type) for name, arg in versions.args.items()} == {
        "bundleId": "String!",
        "statuses": "[MiniAppVersionStatus!]",
        "first": "Int",
    }
    assert versions.args["bundleId"].default_value == "com.alipay.alipaywallet"
    status = schema.type_map["ExperienceStatus"]
    assert isinstance(status, GraphQLEnumType)
    assert list(status.values) == ["PACKAGED", "PACKAGING", "NOT_EXPERIENCE", "UNKNOWN"]
    assert all(value.description for value in status.values.values())


@pytest.mark.parametrize(
    ("upstream", "status"),
    [
        ("expVersionPackged", ExperienceStatus.PACKAGED),  # sic: Alipay's spelling
        ("expVersionPackaged", ExperienceStatus.PACKAGED),
        ("EXPVERSIONPACKAGING", ExperienceStatus.PACKAGING),
        (" notExpVersion ", ExperienceStatus.NOT_EXPERIENCE),
        ("expVersionFrozen", ExperienceStatus.UNKNOWN),
        ("", None),
        (None, None),
    ],
)
def test_experience_status_reads_alipays_spellings(upstream: str | None, status: ExperienceStatus | None) -> None:
    assert MiniAppExperience.from_gateway({"status": upstream}).status is status


@pytest.mark.parametrize(
    ("names", "parsed"),
    [
        ("航空票务_航空公司;生活服务_室内清洁服务;", [("航空票务", "航空公司"), ("生活服务", "室内清洁服务")]),
        ("购物_零售门店", [("购物", "零售门店")]),  # no trailing ";"
        ("购物; _便民服务;;", [("购物", None), (None, "便民服务")]),  # a level missing; blanks dropped
        ("a_b_c;", [("a", "b_c")]),  # split at the first "_"
        ("", []),
        (None, None),
    ],
)
def test_category_names_are_parsed(names: str | None, parsed: list[tuple[str | None, str | None]] | None) -> None:
    found = categories(names)
    assert found == (None if parsed is None else [MiniAppCategory(first=a, second=b) for a, b in parsed])


def test_a_summary_without_a_version_number_is_skipped() -> None:
    assert MiniAppVersionSummary.from_gateway({"version_status": "INIT"}, bundle_id=WALLET) is None
    summary = MiniAppVersionSummary.from_gateway(
        {"app_version": "0.2.9", "bundle_id": "com.amap.app", "can_release": "TRUE", "create_time": "bad"},
        bundle_id=WALLET,
    )
    assert summary is not None
    assert (summary.bundle_id, summary.can_release, summary.create_time) == (WALLET, True, None)
