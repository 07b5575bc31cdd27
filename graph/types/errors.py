"""The union member that reports one client's failed call inside ``miniAppVersions``."""

from __future__ import annotations

import strawberry


@strawberry.type(
    description="Why one client's answer is missing from `miniAppVersions`; the other clients still answer."
)
class MiniAppVersionError:
    app_version: str = strawberry.field(description="The app version that was asked for.")
    bundle_id: str = strawberry.field(description="The client (bundle id) whose call failed.")
    code: str = strawberry.field(
        description="The code a failed `miniAppVersion` carries in `extensions.code`, e.g. `ALIPAY_BUSINESS_ERROR`."
    )
    message: str = strawberry.field(description="What went wrong, for people.")
    sub_code: str | None = strawberry.field(
        description="Alipay's `sub_code` (业务返回码) when the gateway answered, e.g. `BUNDLE_ID_NOT_EXIST`."
    )
    sub_message: str | None = strawberry.field(description="Alipay's `sub_msg` when the gateway answered.")
    retryable: bool = strawberry.field(description="True when the same call may succeed later (busy, timeout).")
