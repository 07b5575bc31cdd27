"""The answer of ``alipay.open.mini.version.detail.query`` (小程序版本详情查询) as GraphQL types.

``from_gateway`` classmethods turn the verified gateway node (upstream snake_case keys) into these types
without ever raising: an absent field or JSON null is None, an absent list None and an empty one [],
enum text is matched case-insensitively (unknown → UNKNOWN, logged once), wrong JSON types are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import strawberry

from graph.types._coerce import beijing_time, boolean, gray_percentage, objects, one, text, text_list
from graph.types.enums import (
    AuditResult,
    MiniAppVersionStatus,
    PackageOpenType,
    PackageStatus,
    ScanResult,
    ServiceRegionType,
    parse_enum,
)
from graph.types.experience import MiniAppExperience
from graph.types.upstream import UpstreamInfo

_BASE_PROMOTE = " Present when the version was submitted for review with audit_rule base_promote."
_BEIJING = " Beijing time (+08:00)."


@strawberry.type(description="A region the mini-program serves (服务区域信息).")
class RegionInfo:
    province_code: str | None = strawberry.field(description="Code of the province (地址所属省份代码), e.g. 310000.")
    province_name: str | None = strawberry.field(description="Name of the province (地址所属省份名称), e.g. 浙江省.")
    city_code: str | None = strawberry.field(description="Code of the city (地址所属市代码), e.g. 310000.")
    city_name: str | None = strawberry.field(description="Name of the city (地址所属市名称), e.g. 杭州市.")
    area_code: str | None = strawberry.field(description="Code of the district (地址所属区代码), e.g. 311100.")
    area_name: str | None = strawberry.field(description="Name of the district (地址所属区名称), e.g. 余杭区.")

    @classmethod
    def from_gateway(cls, node: Mapping[str, Any]) -> RegionInfo:
        return cls(
            province_code=text(node.get("province_code")),
            province_name=text(node.get("province_name")),
            city_code=text(node.get("city_code")),
            city_name=text(node.get("city_name")),
            area_code=text(node.get("area_code")),
            area_name=text(node.get("area_name")),
        )


@strawberry.type(description="A category of the mini-program (小程序类目), up to three levels deep.")
class CategoryInfo:
    first_category_id: str | None = strawberry.field(description="Id of the first-level category (一级类目id).")
    first_category_name: str | None = strawberry.field(
        description="Name of the first-level category (一级类目名称), e.g. 购物 (shopping)."
    )
    second_category_id: str | None = strawberry.field(description="Id of the second-level category (二级类目id).")
    second_category_name: str | None = strawberry.field(
        description="Name of the second-level category (二级类目名称), e.g. 零售门店 (retail store)."
    )
    third_category_id: str | None = strawberry.field(
        description="Id of the third-level category (三级类目id); may be null."
    )
    third_category_name: str | None = strawberry.field(
        description="Name of the third-level category (三级类目名称); may be null."
    )

    @classmethod
    def from_gateway(cls, node: Mapping[str, Any]) -> CategoryInfo:
        return cls(
            first_category_id=text(node.get("first_category_id")),
            first_category_name=text(node.get("first_category_name")),
            second_category_id=text(node.get("second_category_id")),
            second_category_name=text(node.get("second_category_name")),
            third_category_id=text(node.get("third_category_id")),
            third_category_name=text(node.get("third_category_name")),
        )


@strawberry.type(description="A feature package of the mini-program (小程序功能包).")
class PackageInfo:
    package_name: str | None = strawberry.field(description="Name of the feature package (功能包名称).")
    package_desc: str | None = strawberry.field(description="Description of the feature package (功能包描述).")
    doc_url: str | None = strawberry.field(description="URL of the feature package's documentation (功能包文档地址).")
    status: PackageStatus | None = strawberry.field(description="Contract status of the package (功能包签约状态).")
    package_open_type: PackageOpenType | None = strawberry.field(
        description="How the package is activated (功能包开通方式)."
    )

    @classmethod
    def from_gateway(cls, node: Mapping[str, Any]) -> PackageInfo:
        return cls(
            package_name=text(node.get("package_name")),
            package_desc=text(node.get("package_desc")),
            doc_url=text(node.get("doc_url")),
            status=parse_enum(PackageStatus, node.get("status")),
            package_open_type=parse_enum(PackageOpenType, node.get("package_open_type")),
        )


@strawberry.type(description="One reason a review rejected the version (驳回原因).")
class AuditMemo:
    memo: str | None = strawberry.field(
        description="The reason (驳回原因), e.g. a JavaScript error found by the automatic checks."
    )
    memo_image_list: list[str] | None = strawberry.field(
        description="Links to images illustrating the rule (规则图片链接)."
    )

    @classmethod
    def from_gateway(cls, node: Mapping[str, Any]) -> AuditMemo:
        return cls(memo=text(node.get("memo")), memo_image_list=text_list(node.get("memo_image_list")))


@strawberry.type(description="Why a review rejected the version (审核驳回原因).")
class AuditRecord:
    audit_images: list[str] | None = strawberry.field(description="Images from the review (审核图片列表).")
    memos: list[AuditMemo] | None = strawberry.field(description="The rejection reasons (驳回原因列表).")

    @classmethod
    def from_gateway(cls, node: Mapping[str, Any]) -> AuditRecord:
        return cls(
            audit_images=text_list(node.get("audit_images")),
            memos=objects(AuditMemo.from_gateway, node.get("memos")),
        )


async def _experience(root: MiniAppVersion, info: UpstreamInfo) -> MiniAppExperience | None:
    return MiniAppExperience.from_gateway(await info.context.experience(root.app_version, root.bundle_id))


@strawberry.federation.type(
    keys=["appVersion bundleId"],
    description=(
        "One version of an Alipay mini-program (小程序版本) on one client (小程序端), "
        "as alipay.open.mini.version.detail.query (小程序版本详情查询) describes it."
    ),
)
class MiniAppVersion:
    app_version: str = strawberry.field(description="Version number of the mini-program (小程序版本号), e.g. 0.0.1.")
    bundle_id: str = strawberry.field(
        description="Client the version is published on (小程序端), e.g. com.alipay.alipaywallet for Alipay."
    )
    app_name: str | None = strawberry.field(description="Name of the mini-program (小程序应用名称).")
    app_english_name: str | None = strawberry.field(
        description="English name of the mini-program (小程序应用英文名称)."
    )
    app_logo: str | None = strawberry.field(description="URL of the mini-program's logo icon (小程序应用logo图标).")
    version_desc: str | None = strawberry.field(description="Description of this version (小程序版本描述).")
    gray_strategy: str | None = strawberry.field(
        description="Grey-release ratio as upstream gives it (小程序灰度比例值): p10, p30 or p50 for 10, 30 or 50 % "
        "of users."
    )
    gray_percentage: int | None = strawberry.field(
        description="The grey-release ratio as a percentage of users (0-100), read from grayStrategy: 10 for p10; "
        "null when grayStrategy is absent or not of that form."
    )
    status: MiniAppVersionStatus | None = strawberry.field(description="Status of this version (小程序版本状态).")
    reject_reason: str | None = strawberry.field(description="Why the review rejected this version (审核驳回原因).")
    scan_result: ScanResult | None = strawberry.field(description="Result of the security scan (安全扫描结果).")
    gmt_create: datetime | None = strawberry.field(
        description="When this version was created (小程序版本创建时间)." + _BEIJING
    )
    gmt_apply_audit: datetime | None = strawberry.field(
        description="When this version was submitted for review (小程序版本提交审核的时间)." + _BEIJING
    )
    gmt_online: datetime | None = strawberry.field(
        description="When this version was put on the shelf (小程序版本上架时间)." + _BEIJING
    )
    gmt_offline: datetime | None = strawberry.field(
        description="When this version was taken off the shelf (小程序版本下架时间)." + _BEIJING
    )
    app_desc: str | None = strawberry.field(description="Description of the mini-program (小程序应用描述).")
    gmt_audit_end: datetime | None = strawberry.field(
        description="When the review of this version ended (小程序版本审核结束时间)." + _BEIJING
    )
    service_region_type: ServiceRegionType | None = strawberry.field(
        description="Where the mini-program offers its service (小程序服务区域类型)."
    )
    service_region_info: list[RegionInfo] | None = strawberry.field(
        description="The regions served (小程序服务区域信息), given when serviceRegionType is LOCATION."
    )
    screen_shot_list: list[str] | None = strawberry.field(
        description="URLs of this version's screenshots (小程序版本截图)."
    )
    app_slogan: str | None = strawberry.field(
        description="One sentence on what the mini-program does (小程序应用简介)."
    )
    memo: str | None = strawberry.field(description="Remarks on the mini-program (小程序备注).")
    service_phone: str | None = strawberry.field(description="Customer-service phone number (客服电话).")
    service_email: str | None = strawberry.field(description="Customer-service e-mail address (客服邮箱).")
    mini_app_category_info_list: list[CategoryInfo] | None = strawberry.field(
        description="Categories of the mini-program (小程序类目列表)."
    )
    package_info_list: list[PackageInfo] | None = strawberry.field(
        description="Feature packages of the mini-program (小程序功能包列表)."
    )
    mini_category_info_list: list[CategoryInfo] | None = strawberry.field(
        description="Categories of the mini-program in the new category system (新小程序类目列表)."
    )
    base_audit: AuditResult | None = strawberry.field(
        description="Result of the admission review (准入审核结果)." + _BASE_PROMOTE
    )
    promote_audit: AuditResult | None = strawberry.field(
        description="Result of the marketing review (营销审核结果)." + _BASE_PROMOTE
    )
    can_release: bool | None = strawberry.field(
        description="Whether the version may be put on the shelf (是否可上架); set when the marketing review "
        "rejected it (promote_audit_reject)." + _BASE_PROMOTE
    )
    base_audit_record: AuditRecord | None = strawberry.field(
        description="Why the admission review rejected the version (准入审核驳回原因)." + _BASE_PROMOTE
    )
    promote_audit_record: AuditRecord | None = strawberry.field(
        description="Why the marketing review rejected the version (营销审核驳回原因)." + _BASE_PROMOTE
    )

    experience: MiniAppExperience | None = strawberry.field(
        resolver=_experience,
        description="The trial (experience) build of this version on this client "
        "(alipay.open.mini.experience.query; fetched only when selected).",
    )

    @classmethod
    def from_gateway(cls, node: Mapping[str, Any], *, app_version: str, bundle_id: str) -> MiniAppVersion:
        """The version from a verified gateway node; the key is the one asked for, whatever the node echoes."""
        gray_strategy = text(node.get("gray_strategy"))
        return cls(
            app_version=app_version,
            bundle_id=bundle_id,
            app_name=text(node.get("app_name")),
            app_english_name=text(node.get("app_english_name")),
            app_logo=text(node.get("app_logo")),
            version_desc=text(node.get("version_desc")),
            gray_strategy=gray_strategy,
            gray_percentage=gray_percentage(gray_strategy),
            status=parse_enum(MiniAppVersionStatus, node.get("status")),
            reject_reason=text(node.get("reject_reason")),
            scan_result=parse_enum(ScanResult, node.get("scan_result")),
            gmt_create=beijing_time(node.get("gmt_create"), "gmt_create"),
            gmt_apply_audit=beijing_time(node.get("gmt_apply_audit"), "gmt_apply_audit"),
            gmt_online=beijing_time(node.get("gmt_online"), "gmt_online"),
            gmt_offline=beijing_time(node.get("gmt_offline"), "gmt_offline"),
            app_desc=text(node.get("app_desc")),
            gmt_audit_end=beijing_time(node.get("gmt_audit_end"), "gmt_audit_end"),
            service_region_type=parse_enum(ServiceRegionType, node.get("service_region_type")),
            service_region_info=objects(RegionInfo.from_gateway, node.get("service_region_info")),
            screen_shot_list=text_list(node.get("screen_shot_list")),
            app_slogan=text(node.get("app_slogan")),
            memo=text(node.get("memo")),
            service_phone=text(node.get("service_phone")),
            service_email=text(node.get("service_email")),
            mini_app_category_info_list=objects(CategoryInfo.from_gateway, node.get("mini_app_category_info_list")),
            package_info_list=objects(PackageInfo.from_gateway, node.get("package_info_list")),
            mini_category_info_list=objects(CategoryInfo.from_gateway, node.get("mini_category_info_list")),
            base_audit=parse_enum(AuditResult, node.get("base_audit")),
            promote_audit=parse_enum(AuditResult, node.get("promote_audit")),
            can_release=boolean(node.get("can_release")),
            base_audit_record=one(AuditRecord.from_gateway, node.get("base_audit_record")),
            promote_audit_record=one(AuditRecord.from_gateway, node.get("promote_audit_record")),
        )
