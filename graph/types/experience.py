"""The answer of ``alipay.open.mini.experience.query`` (小程序体验版状态查询): a version's trial build."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import strawberry

from graph.types._coerce import text
from graph.types.enums import ExperienceStatus, parse_enum


@strawberry.type(
    description="The trial (experience) build of one version on one client (小程序体验版), "
    "as alipay.open.mini.experience.query describes it."
)
class MiniAppExperience:
    status: ExperienceStatus | None = strawberry.field(
        description="Packaging state of the trial build (体验版打包状态)."
    )
    qr_code_url: str | None = strawberry.field(
        description="URL of the trial build's QR code (体验版二维码地址), to scan with the client; "
        "present once the build is packaged."
    )
    schema_url: str | None = strawberry.field(
        description="The trial build's schema link (体验版schema地址), e.g. alipays://..., to open it on a device."
    )

    @classmethod
    def from_gateway(cls, node: Mapping[str, Any]) -> MiniAppExperience:
        return cls(
            status=parse_enum(ExperienceStatus, node.get("status")),
            qr_code_url=text(node.get("exp_qr_code_url")),
            schema_url=text(node.get("exp_schema_url")),
        )
