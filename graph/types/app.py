"""The mini-program itself (``alipay.open.mini.baseinfo.query``) and its versions (``...version.list.query``).

``MiniApp`` holds no data of its own: each base-information field fetches the base info (one call per request,
shared through the DataLoader) and ``versions`` fetches the list, so a selection of ``versions`` alone never asks
for base info. A summary's ``detail`` and ``experience`` are fetched only when selected too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Annotated, Any

import strawberry

from graph.types._coerce import beijing_time, boolean, text, text_list, warn_once
from graph.types.enums import AuditResult, MiniAppVersionStatus, parse_enum
from graph.types.experience import MiniAppExperience
from graph.types.upstream import UpstreamInfo
from graph.types.version import MiniAppVersion

ALIPAY_BUNDLE_ID = "com.alipay.alipaywallet"
_BASE_PROMOTE = " Present when the version was submitted for review with audit_rule base_promote."


@strawberry.type(description="One category of the mini-program (小程序类目): a first and a second level.")
class MiniAppCategory:
    first: str | None = strawberry.field(description="First-level category name (一级类目), e.g. 购物 (shopping).")
    second: str | None = strawberry.field(
        description="Second-level category name (二级类目), e.g. 零售门店 (retail store)."
    )


def categories(names: str | None) -> list[MiniAppCategory] | None:
    """``一级_二级;一级_二级;`` as a list: pairs split at the first ``_``, blanks dropped."""
    if names is None:
        return None
    found = []
    for pair in names.split(";"):
        first, _, second = pair.strip().partition("_")
        if first or second:
            found.append(MiniAppCategory(first=first.strip() or None, second=second.strip() or None))
    return found


def _base_text(name: str) -> Callable[[UpstreamInfo], Awaitable[str | None]]:
    async def resolve(info: UpstreamInfo) -> str | None:
        return text((await info.context.base_info()).get(name))

    return resolve


def _base_list(name: str) -> Callable[[UpstreamInfo], Awaitable[list[str] | None]]:
    async def resolve(info: UpstreamInfo) -> list[str] | None:
        return text_list((await info.context.base_info()).get(name))

    return resolve


async def _categories(info: UpstreamInfo) -> list[MiniAppCategory] | None:
    return categories(text((await info.context.base_info()).get("category_names")))


async def _registration_limit_release(info: UpstreamInfo) -> bool | None:
    return boolean((await info.context.base_info()).get("registration_limit_release"))


async def _detail(root: MiniAppVersionSummary, info: UpstreamInfo) -> MiniAppVersion | None:
    node = await info.context.version_detail(root.app_version, root.bundle_id)
    return MiniAppVersion.from_gateway(node, app_version=root.app_version, bundle_id=root.bundle_id)


async def _experience(root: MiniAppVersionSummary, info: UpstreamInfo) -> MiniAppExperience | None:
    return MiniAppExperience.from_gateway(await info.context.experience(root.app_version, root.bundle_id))


async def _versions(
    info: UpstreamInfo,
    bundle_id: Annotated[str, strawberry.argument(description="The client (小程序端); default Alipay.")] = (
        ALIPAY_BUNDLE_ID
    ),
    statuses: Annotated[
        list[MiniAppVersionStatus] | None,
        strawberry.argument(description="Only versions in these statuses; without it, every status."),
    ] = None,
    first: Annotated[
        int | None, strawberry.argument(description="At most this many (the newest); without it, all listed.")
    ] = None,
) -> list[MiniAppVersionSummary] | None:
    asked = None if statuses is None else [status.name for status in statuses]
    items = await info.context.version_list(bundle_id, asked, first)
    if items is None:
        return None
    summaries = (MiniAppVersionSummary.from_gateway(item, bundle_id=bundle_id) for item in items)
    return [summary for summary in summaries if summary is not None]


@strawberry.type(
    description="A version as the version list gives it (小程序版本列表查询的一项); `detail` and `experience` "
    "fetch more about it, each only when selected."
)
class MiniAppVersionSummary:
    app_version: str = strawberry.field(description="Version number (小程序版本号), e.g. 0.2.9.")
    bundle_id: str = strawberry.field(description="Client the version is on (小程序端), e.g. com.alipay.alipaywallet.")
    status: MiniAppVersionStatus | None = strawberry.field(description="Status of this version (小程序版本状态).")
    version_description: str | None = strawberry.field(description="Description of this version (版本描述).")
    create_time: datetime | None = strawberry.field(
        description="When this version was created (版本创建时间). Beijing time (+08:00)."
    )
    base_audit: AuditResult | None = strawberry.field(
        description="Result of the admission review (准入审核结果)." + _BASE_PROMOTE
    )
    promote_audit: AuditResult | None = strawberry.field(
        description="Result of the marketing review (营销审核结果)." + _BASE_PROMOTE
    )
    can_release: bool | None = strawberry.field(
        description="Whether the version may go online (是否可以上架); upstream the text true or false." + _BASE_PROMOTE
    )

    detail: MiniAppVersion | None = strawberry.field(
        resolver=_detail,
        description="Everything about this version on this client (alipay.open.mini.version.detail.query), "
        "through the same batched, cached path as miniAppVersion. Null with an error when that call fails.",
    )
    experience: MiniAppExperience | None = strawberry.field(
        resolver=_experience,
        description="The trial (experience) build of this version (alipay.open.mini.experience.query). "
        "Null with an error when that call fails.",
    )

    @classmethod
    def from_gateway(cls, node: Mapping[str, Any], *, bundle_id: str) -> MiniAppVersionSummary | None:
        """One ``app_version_infos`` item; None (logged once) for an item without a version number."""
        app_version = text(node.get("app_version"))
        if not app_version:
            warn_once("unusable %s item %s from the gateway; skipped", "app_version_infos", dict(node))
            return None
        return cls(
            app_version=app_version,
            bundle_id=bundle_id,  # the client asked for, whatever the item echoes (detail and experience ask it)
            status=parse_enum(MiniAppVersionStatus, node.get("version_status")),
            version_description=text(node.get("version_description")),
            create_time=beijing_time(node.get("create_time"), "create_time"),
            base_audit=parse_enum(AuditResult, node.get("base_audit")),
            promote_audit=parse_enum(AuditResult, node.get("promote_audit")),
            can_release=boolean(node.get("can_release")),
        )


_FETCHED = " Fetched with the other base-information fields (alipay.open.mini.baseinfo.query) when one is selected."


@strawberry.type(
    description="The mini-program that the app id and the merchant token designate (小程序), with its base "
    "information (alipay.open.mini.baseinfo.query) and its versions (alipay.open.mini.version.list.query)."
)
class MiniApp:
    app_name: str | None = strawberry.field(
        resolver=_base_text("app_name"), description="Name of the mini-program (小程序名称)." + _FETCHED
    )
    app_english_name: str | None = strawberry.field(
        resolver=_base_text("app_english_name"),
        description="English name of the mini-program (小程序英文名称)." + _FETCHED,
    )
    app_slogan: str | None = strawberry.field(
        resolver=_base_text("app_slogan"),
        description="One sentence on what the mini-program does (小程序简介)." + _FETCHED,
    )
    app_desc: str | None = strawberry.field(
        resolver=_base_text("app_desc"), description="Description of the mini-program (小程序描述)." + _FETCHED
    )
    app_logo: str | None = strawberry.field(
        resolver=_base_text("app_logo"), description="URL of the mini-program's logo (小程序应用logo图标)." + _FETCHED
    )
    service_phone: str | None = strawberry.field(
        resolver=_base_text("service_phone"), description="Customer-service phone number (小程序客服电话)." + _FETCHED
    )
    service_email: str | None = strawberry.field(
        resolver=_base_text("service_email"),
        description="Customer-service e-mail address (小程序客服邮箱)." + _FETCHED,
    )
    category_names: str | None = strawberry.field(
        resolver=_base_text("category_names"),
        description="The categories as upstream gives them (小程序类目), one text of `first_second;` pairs, e.g. "
        "航空票务_航空公司;生活服务_室内清洁服务; (`categories` has them parsed)." + _FETCHED,
    )
    categories: list[MiniAppCategory] | None = strawberry.field(
        resolver=_categories, description="The categories (小程序类目), parsed from categoryNames." + _FETCHED
    )
    package_names: list[str] | None = strawberry.field(
        resolver=_base_list("package_names"),
        description="Names of the feature packages the mini-program has (功能包名称)." + _FETCHED,
    )
    safe_domains: list[str] | None = strawberry.field(
        resolver=_base_list("safe_domains"),
        description="The domains the mini-program may call (小程序域名白名单)." + _FETCHED,
    )
    registration_limit_release: bool | None = strawberry.field(
        resolver=_registration_limit_release,
        description="Whether release is restricted (受限发布) because the ICP filing is not done: scan-only, not "
        "searchable, at most 50 users a day, offline after 90 days without filing; false when unrestricted." + _FETCHED,
    )
    versions: list[MiniAppVersionSummary] | None = strawberry.field(
        resolver=_versions,
        description="Versions on one client, newest first (alipay.open.mini.version.list.query; Alipay returns at "
        "most 20). Null with an error when the list cannot be fetched.",
    )
