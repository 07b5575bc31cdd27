"""Argument checks shared by the version fields: all run before any gateway call (BAD_USER_INPUT)."""

from __future__ import annotations

import re

from graph.errors import BadUserInput
from graph.types.enums import MiniAppVersionStatus

DEFAULT_BUNDLE_ID = "com.alipay.alipaywallet"
# The five clients the API documents, in the order miniAppVersions answers by default.
KNOWN_BUNDLE_IDS = (
    "com.alipay.alipaywallet",  # Alipay 支付宝
    "com.alibaba.android.rimet",  # DingTalk 钉钉
    "com.amap.app",  # Amap 高德
    "com.alibaba.ailabs.genie.webapps",  # Tmall Genie 天猫精灵
    "com.alipay.iot.xpaas",  # Alipay IoT
)
_BUNDLE_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_APP_VERSION_CHARS = 64


def app_version(value: str) -> str:
    """1..64 characters, not blank, no control characters (the gateway's ``app_version`` rule)."""
    if not value.strip():
        raise BadUserInput("appVersion must not be empty", argumentName="appVersion")
    if len(value) > MAX_APP_VERSION_CHARS:
        raise BadUserInput(f"appVersion is longer than {MAX_APP_VERSION_CHARS} characters", argumentName="appVersion")
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise BadUserInput("appVersion must not contain spaces or control characters", argumentName="appVersion")
    return value


def bundle_id(value: str, argument: str = "bundleId") -> str:
    """A reverse-domain client id such as ``com.alipay.alipaywallet``; unknown but well-formed ids pass."""
    if not _BUNDLE_ID.fullmatch(value) or "." not in value:
        raise BadUserInput(
            f"{argument} must be a reverse-domain id such as com.alipay.alipaywallet "
            "(letters, digits, '.', '_' or '-', at most 64, with a dot)",
            argumentName=argument,
        )
    return value


def bundle_ids(values: list[str] | None, limit: int) -> list[str]:
    """The clients to ask, the five known ones when none are named; at most ``limit``."""
    if values is None:
        return list(KNOWN_BUNDLE_IDS)
    if len(values) > limit:
        raise BadUserInput(
            f"bundleIds names {len(values)} clients; at most {limit} are allowed", argumentName="bundleIds"
        )
    return [bundle_id(value, "bundleIds") for value in values]


# Every status Alipay documents, in the enum's order: what the version list asks for when none are named.
ALL_STATUSES = tuple(status.name for status in MiniAppVersionStatus if status is not MiniAppVersionStatus.UNKNOWN)


def statuses(values: list[str] | None) -> list[str]:
    """The statuses to list, each once, in one order; all of them when none are named."""
    if values is None:
        return list(ALL_STATUSES)
    if MiniAppVersionStatus.UNKNOWN.name in values:
        raise BadUserInput("statuses: UNKNOWN is not a status Alipay can list by", argumentName="statuses")
    return [status for status in ALL_STATUSES if status in values]


def first(value: int | None) -> int | None:
    if value is not None and value < 0:
        raise BadUserInput("first must not be negative", argumentName="first")
    return value
