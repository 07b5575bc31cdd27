"""The schema's enums and the tolerant reading of upstream enum text.

Upstream values are matched case-insensitively after stripping (the doc was lower-cased in transcription,
the gateway sends upper case). A value an enum does not know becomes ``UNKNOWN`` and is logged once.
"""

from __future__ import annotations

import enum
from typing import TypeVar

import strawberry

from graph.types._coerce import text, warn_once

E = TypeVar("E", bound=enum.Enum)

_UNKNOWN = "A value this service does not know yet (the upstream text is logged)."


@strawberry.enum(description="Status of a mini-program version (小程序版本状态).")
class MiniAppVersionStatus(enum.Enum):
    INIT = strawberry.enum_value("INIT", description="In development (开发中).")
    AUDITING = strawberry.enum_value("AUDITING", description="Under review (审核中).")
    WAIT_RELEASE = strawberry.enum_value(
        "WAIT_RELEASE", description="Approved, waiting to be put on the shelf (待上架)."
    )
    BASE_AUDIT_PASS = strawberry.enum_value(
        "BASE_AUDIT_PASS", description="Passed the admission review but may not be marketed (准入不可营销)."
    )
    AUDIT_REJECT = strawberry.enum_value("AUDIT_REJECT", description="Rejected by the review (审核驳回).")
    RELEASE = strawberry.enum_value("RELEASE", description="On the shelf: released to users (已上架).")
    GRAY = strawberry.enum_value("GRAY", description="In grey release to a share of users (灰度中).")
    OFFLINE = strawberry.enum_value("OFFLINE", description="Taken off the shelf (已下架).")
    AUDIT_OFFLINE = strawberry.enum_value(
        "AUDIT_OFFLINE", description="Forcibly taken off the shelf by the platform (已被强制下架)."
    )
    UNKNOWN = strawberry.enum_value("UNKNOWN", description=_UNKNOWN)


@strawberry.enum(description="Result of the security scan of a version (安全扫描结果).")
class ScanResult(enum.Enum):
    PASSED = strawberry.enum_value("PASSED", description="The scan passed (安全扫描通过); upstream `True`.")
    FAILED = strawberry.enum_value("FAILED", description="The scan did not pass (安全扫描不通过); upstream `False`.")
    SCANNING = strawberry.enum_value("SCANNING", description="The scan is still running (扫描中); upstream `NAN`.")
    UNKNOWN = strawberry.enum_value("UNKNOWN", description=_UNKNOWN)


@strawberry.enum(description="Where the mini-program offers its service (小程序服务区域类型).")
class ServiceRegionType(enum.Enum):
    GLOBAL = strawberry.enum_value("GLOBAL", description="Worldwide (全球); upstream spells it `GLOBLE`.")
    CHINA = strawberry.enum_value("CHINA", description="Mainland China (中国).")
    LOCATION = strawberry.enum_value(
        "LOCATION", description="Specific regions (指定区域), listed in `serviceRegionInfo`."
    )
    UNKNOWN = strawberry.enum_value("UNKNOWN", description=_UNKNOWN)


@strawberry.enum(description="Contract status of a feature package (功能包签约状态).")
class PackageStatus(enum.Enum):
    VALID = strawberry.enum_value("VALID", description="In effect (已生效).")
    AUDIT = strawberry.enum_value("AUDIT", description="Contract being signed (签约中).")
    INVALID = strawberry.enum_value("INVALID", description="No longer in effect (已失效).")
    UNKNOWN = strawberry.enum_value("UNKNOWN", description=_UNKNOWN)


@strawberry.enum(description="How a feature package is activated (功能包开通方式).")
class PackageOpenType(enum.Enum):
    APPLY = strawberry.enum_value("APPLY", description="Activated on application (申请开通).")
    ORDER = strawberry.enum_value("ORDER", description="Activated by signing a contract (签约开通).")
    DEFAULT = strawberry.enum_value("DEFAULT", description="Activated by default (默认开通).")
    UNKNOWN = strawberry.enum_value("UNKNOWN", description=_UNKNOWN)


@strawberry.enum(description="Outcome of a review of a version (审核结果).")
class AuditResult(enum.Enum):
    PASS = strawberry.enum_value("PASS", description="Passed (通过).")
    REJECT = strawberry.enum_value("REJECT", description="Rejected (驳回).")
    UNKNOWN = strawberry.enum_value("UNKNOWN", description=_UNKNOWN)


@strawberry.enum(description="Packaging state of the trial (experience) build of a version (体验版打包状态).")
class ExperienceStatus(enum.Enum):
    PACKAGED = strawberry.enum_value(
        "PACKAGED",
        description="Packaged: the trial build can be scanned (打包成功); upstream `expVersionPackged` (sic).",
    )
    PACKAGING = strawberry.enum_value(
        "PACKAGING", description="Being packaged (打包中); upstream `expVersionPackaging`."
    )
    NOT_EXPERIENCE = strawberry.enum_value(
        "NOT_EXPERIENCE", description="This version is not the trial build (非体验版); upstream `notExpVersion`."
    )
    UNKNOWN = strawberry.enum_value("UNKNOWN", description=_UNKNOWN)


# Upstream spellings that are not member names (upper case).
_ALIASES: dict[type[enum.Enum], dict[str, str]] = {
    ScanResult: {"TRUE": "PASSED", "FALSE": "FAILED", "NAN": "SCANNING"},
    ServiceRegionType: {"GLOBLE": "GLOBAL"},
    # Alipay's own misspelling, and the spelling it may one day correct it to.
    ExperienceStatus: {
        "EXPVERSIONPACKGED": "PACKAGED",
        "EXPVERSIONPACKAGED": "PACKAGED",
        "EXPVERSIONPACKAGING": "PACKAGING",
        "NOTEXPVERSION": "NOT_EXPERIENCE",
    },
}


def parse_enum(kind: type[E], value: object) -> E | None:
    """The member ``value`` names (any case, aliases included); None when absent or blank, else UNKNOWN."""
    if value is None:
        return None
    raw = text(value)
    member = None
    if raw is not None:  # else a JSON object or array: nothing an enum can name
        name = raw.strip().upper()
        if not name:
            return None
        member = kind.__members__.get(_ALIASES.get(kind, {}).get(name, name))
    if member is None:
        warn_once("unknown %s value %s from the gateway; using UNKNOWN", kind.__name__, value)
        return kind.__members__["UNKNOWN"]
    return member
