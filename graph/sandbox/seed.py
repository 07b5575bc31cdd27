"""Seeded answers: five versions of one demo mini-program on the five known clients.

Shaped like the API doc's example (30 fields; real enum values are upper-case), with the variety a
client must cope with: every status, all three scan results and region types, absent optional fields,
empty lists, Chinese text and https URLs (which the gateway writes with escaped slashes).
Built from one base record per version plus per-client variations.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

DEFAULT_BUNDLE_ID = "com.alipay.alipaywallet"
# The doc's list, in its order: Alipay, DingTalk, Amap, Tmall Genie, Alipay IoT.
KNOWN_BUNDLE_IDS: tuple[str, ...] = (
    DEFAULT_BUNDLE_ID,
    "com.alibaba.android.rimet",
    "com.amap.app",
    "com.alibaba.ailabs.genie.webapps",
    "com.alipay.iot.xpaas",
)

# The answer's fields in the order the doc's example (and the gateway) writes them.
RESPONSE_FIELDS: tuple[str, ...] = (
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
)

_IMG = "https://mdn.alipayobjects.com/huamei_demo/afts/img"
_DOCS = "https://opendocs.alipay.com/mini"

_YUHANG = {
    "province_code": "330000",
    "province_name": "浙江省",
    "city_code": "330100",
    "city_name": "杭州市",
    "area_code": "330110",
    "area_name": "余杭区",
}
_XUHUI = {
    "province_code": "310000",
    "province_name": "上海市",
    "city_code": "310100",
    "city_name": "上海市",
    "area_code": "310104",
    "area_name": "徐汇区",
}
_RETAIL = {
    "first_category_id": "XS1020",
    "first_category_name": "购物",
    "second_category_id": "XS2167",
    "second_category_name": "零售门店",
    "third_category_id": "XS3175",
    "third_category_name": "服饰箱包门店",
}
_CONVENIENCE = {  # no third level: both third_* fields are optional and absent here
    "first_category_id": "XS1011",
    "first_category_name": "生活服务",
    "second_category_id": "XS2089",
    "second_category_name": "便民服务",
}
_BASIC_PACKAGE = {
    "package_name": "小程序基础功能包",
    "package_desc": "通用能力",
    "doc_url": f"{_DOCS}/introduce/basic-package",
    "status": "VALID",
    "package_open_type": "DEFAULT",
}
_MEMBER_PACKAGE = {
    "package_name": "会员卡功能包",
    "package_desc": "会员卡开卡、积分与核销",
    "doc_url": f"{_DOCS}/introduce/member-card",
    "status": "AUDIT",
    "package_open_type": "APPLY",
}
_PAYMENT_PACKAGE = {"package_name": "支付能力功能包", "status": "VALID", "package_open_type": "ORDER"}
_JS_ERROR_MEMO = {"memo": "js错误检测:发现js错误,请及时优化", "memo_image_list": [f"{_IMG}/audit-js-error.png"]}


def _audit(*memos: Mapping[str, Any]) -> dict[str, Any]:
    return {"audit_images": [f"{_IMG}/audit-{i}.png" for i in range(1, len(memos) + 1)], "memos": list(memos)}


def _screenshots(*names: str) -> list[str]:
    return [f"{_IMG}/{name}.png" for name in names]


_APP = {
    "app_name": "小程序demo",
    "app_english_name": "demoexample",
    "app_logo": f"{_IMG}/logo-demo.png",
    "app_desc": "小程序demo的相关示例:查询附近门店、领取会员积分、在线下单。",
    "app_slogan": "小程序demo简介",
    "service_phone": "13110101010",
    "service_email": "example@mail.com",
}

_BASE: dict[str, dict[str, Any]] = {
    # Every one of the 30 fields, as in the doc's example (which fills even gmt_offline for a live version).
    "0.0.1": {
        **_APP,
        "version_desc": "这是一个简单的版本描述:首个版本,支持门店查询。",
        "gray_strategy": "p10",
        "status": "RELEASE",
        "reject_reason": "名称太宽泛",
        "scan_result": "True",
        "gmt_create": "2024-03-01 10:12:45",
        "gmt_apply_audit": "2024-03-01 15:30:00",
        "gmt_online": "2024-03-05 09:00:00",
        "gmt_offline": "2024-06-30 23:59:59",
        "gmt_audit_end": "2024-03-04 18:22:10",
        "service_region_type": "LOCATION",
        "service_region_info": [_YUHANG],
        "screen_shot_list": _screenshots("home", "stores", "member"),
        "memo": "这是一个demo示例",
        "mini_app_category_info_list": [_RETAIL],
        "package_info_list": [_BASIC_PACKAGE],
        "mini_category_info_list": [_RETAIL],
        "base_audit": "PASS",
        "promote_audit": "PASS",
        "can_release": "true",
        "base_audit_record": _audit(_JS_ERROR_MEMO),
        "promote_audit_record": _audit({"memo": "营销文案含绝对化用语,已修改", "memo_image_list": []}),
    },
    # No base/promote audit fields: submitted without audit_rule=base_promote.
    "0.0.2": {
        **_APP,
        "version_desc": "新增会员卡开卡;修复门店列表偶现白屏。",
        "gray_strategy": "p10",
        "status": "GRAY",
        "scan_result": "True",
        "gmt_create": "2024-04-02 09:40:00",
        "gmt_apply_audit": "2024-04-02 14:00:00",
        "gmt_online": "2024-04-08 10:00:00",
        "gmt_audit_end": "2024-04-03 11:05:37",
        "service_region_type": "GLOBLE",
        "screen_shot_list": _screenshots("home-v2", "member-card"),
        "mini_app_category_info_list": [_RETAIL],
        "package_info_list": [_BASIC_PACKAGE, _MEMBER_PACKAGE],
        "mini_category_info_list": [_RETAIL, _CONVENIENCE],
    },
    "0.1.0": {
        **_APP,
        "version_desc": "支持在线下单与到店自提。",
        "status": "AUDITING",
        "scan_result": "NAN",
        "gmt_create": "2024-05-20 16:00:00",
        "gmt_apply_audit": "2024-05-21 09:30:00",
        "service_region_type": "CHINA",
        "screen_shot_list": _screenshots("order", "pickup"),
        "memo": "提审备注:下单流程需登录后体验,测试账号见附件。",
        "mini_app_category_info_list": [_RETAIL],
        "package_info_list": [_BASIC_PACKAGE, _MEMBER_PACKAGE, _PAYMENT_PACKAGE],
        "mini_category_info_list": [_RETAIL],
    },
    "1.0.0": {
        **_APP,
        "app_name": "小程序",
        "version_desc": "品牌升级:更名并改版首页。",
        "status": "AUDIT_REJECT",
        "reject_reason": "名称太宽泛,请使用能体现服务内容的名称",
        "scan_result": "False",
        "gmt_create": "2024-07-01 11:11:11",
        "gmt_apply_audit": "2024-07-01 15:00:00",
        "gmt_audit_end": "2024-07-02 10:48:03",
        "service_region_type": "LOCATION",
        "service_region_info": [_YUHANG, _XUHUI],
        "screen_shot_list": _screenshots("home-v3"),
        "mini_app_category_info_list": [_RETAIL],
        "package_info_list": [_BASIC_PACKAGE],
        "mini_category_info_list": [_RETAIL],
        "base_audit": "REJECT",
        "can_release": "false",
        "base_audit_record": _audit(
            {"memo": "小程序名称过于宽泛,不能体现具体服务", "memo_image_list": [f"{_IMG}/audit-name.png"]},
            _JS_ERROR_MEMO,
        ),
    },
    # A fresh draft: little filled in, lists present but empty.
    "1.1.0-beta": {
        "app_name": "小程序demo",
        "version_desc": "开发中的测试版本",
        "status": "INIT",
        "scan_result": "NAN",
        "gmt_create": "2024-08-15 20:05:00",
        "screen_shot_list": [],
        "mini_app_category_info_list": [],
        "package_info_list": [],
        "mini_category_info_list": [],
    },
}

_DROP: Final = object()  # in a variation: this field is absent on that client

_REJECTION = ("reject_reason", "base_audit", "can_release", "base_audit_record", "gmt_audit_end")

_VARIATIONS: dict[str, dict[str, dict[str, Any]]] = {
    "com.alibaba.android.rimet": {
        "0.0.2": {"gray_strategy": "p30"},
        "0.1.0": {"status": "WAIT_RELEASE", "scan_result": "True", "gmt_audit_end": "2024-05-22 17:20:00"},
    },
    "com.amap.app": {
        "0.0.1": {"status": "OFFLINE"},
        "0.0.2": {"status": "RELEASE", "gray_strategy": _DROP},
        "1.0.0": {"status": "AUDITING", "scan_result": "NAN", **dict.fromkeys(_REJECTION, _DROP)},
    },
    "com.alibaba.ailabs.genie.webapps": {
        "0.0.1": {"status": "AUDIT_OFFLINE", "memo": "因违规被强制下架"},
        "0.0.2": {"status": "WAIT_RELEASE", "gray_strategy": _DROP, "gmt_online": _DROP},
        "0.1.0": {
            "status": "BASE_AUDIT_PASS",
            "scan_result": "True",
            "gmt_audit_end": "2024-05-23 10:00:00",
            "base_audit": "PASS",
            "promote_audit": "REJECT",
            "can_release": "true",
            "promote_audit_record": _audit({"memo": "营销图片含未授权品牌标识", "memo_image_list": []}),
        },
    },
    "com.alipay.iot.xpaas": {
        "0.0.2": {"status": "OFFLINE", "gray_strategy": _DROP, "gmt_offline": "2024-05-01 00:00:00"},
        "0.1.0": {"status": "RELEASE", "scan_result": "True", "gmt_online": "2024-05-25 08:00:00"},
        "1.0.0": {"status": "INIT", "scan_result": "NAN", "gmt_apply_audit": _DROP, **dict.fromkeys(_REJECTION, _DROP)},
    },
}


def _build() -> dict[tuple[str, str], Mapping[str, Any]]:
    versions: dict[tuple[str, str], Mapping[str, Any]] = {}
    for bundle_id in KNOWN_BUNDLE_IDS:
        for app_version, base in _BASE.items():
            record = {"app_version": app_version, **base}
            for name, value in _VARIATIONS.get(bundle_id, {}).get(app_version, {}).items():
                if value is _DROP:
                    del record[name]
                else:
                    record[name] = value
            ordered = {name: record[name] for name in RESPONSE_FIELDS if name in record}
            versions[app_version, bundle_id] = MappingProxyType(ordered)
    return versions


SEED_VERSIONS: Mapping[tuple[str, str], Mapping[str, Any]] = MappingProxyType(_build())

# alipay.open.mini.baseinfo.query: the same app as the versions above (its name, logo, the categories of its
# current versions as one "level1_level2;" string, the packages they use).
SEED_BASE_INFO: Mapping[str, Any] = MappingProxyType(
    {
        "app_name": _APP["app_name"],
        "app_english_name": _APP["app_english_name"],
        "app_slogan": _APP["app_slogan"],
        "app_desc": _APP["app_desc"],
        "app_logo": _APP["app_logo"],
        "category_names": "购物_零售门店;生活服务_便民服务;",
        "package_names": [_BASIC_PACKAGE["package_name"], _MEMBER_PACKAGE["package_name"]],
        "safe_domains": ["api.demo-shop.example.com", "img.demo-shop.example.com"],
        "service_email": _APP["service_email"],
        "service_phone": _APP["service_phone"],
        "registration_limit_release": False,
    }
)
