"""What the lazily fetched fields ask of the context they are resolved in.

``MiniApp``'s base information, its ``versions``, a summary's ``detail`` and a version's ``experience`` are each
fetched only when selected, so their resolvers live on the types and reach the gateway through the request's
context, which implements this protocol (``resolvers.context.Context``: the request's DataLoaders, cache,
single-flight, deadline). Each method returns the verified answer's fields, or raises the GraphQL error that
fails only the field that asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import strawberry


class Upstream(Protocol):
    async def base_info(self) -> Mapping[str, Any]:
        """``alipay.open.mini.baseinfo.query``'s answer."""
        ...

    async def version_list(
        self, bundle_id: str, statuses: list[str] | None, first: int | None
    ) -> list[Mapping[str, Any]] | None:
        """The ``app_version_infos`` of ``alipay.open.mini.version.list.query``, newest first, at most ``first``."""
        ...

    async def version_detail(self, app_version: str, bundle_id: str) -> Mapping[str, Any]:
        """``alipay.open.mini.version.detail.query``'s answer."""
        ...

    async def experience(self, app_version: str, bundle_id: str) -> Mapping[str, Any]:
        """``alipay.open.mini.experience.query``'s answer."""
        ...


UpstreamInfo = strawberry.Info[Upstream, None]
