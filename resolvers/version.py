"""Resolvers for the version fields: ``miniAppVersion``, ``miniAppVersions`` and entity references.

All three go through the request's DataLoader, so aliases, list items and ``_entities`` references that
name the same (token, version, client) share one gateway call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Annotated, Any

import strawberry

from graph.errors import BadUserInput, GraphError
from graph.live.state import error_facts
from graph.types.errors import MiniAppVersionError
from graph.types.version import MiniAppVersion
from resolvers import arguments
from resolvers.context import Context, Info

MiniAppVersionResult = Annotated[
    MiniAppVersion | MiniAppVersionError,
    strawberry.union(
        "MiniAppVersionResult",
        description="One client's answer in `miniAppVersions`: the version, or why it could not be fetched.",
    ),
]


async def mini_app_version(
    info: Info, app_version: str, bundle_id: str = arguments.DEFAULT_BUNDLE_ID
) -> MiniAppVersion | None:
    return await fetch_version(info.context, arguments.app_version(app_version), arguments.bundle_id(bundle_id))


async def mini_app_versions(
    info: Info, app_version: str, bundle_ids: list[str] | None = None
) -> list[MiniAppVersionResult]:
    version = arguments.app_version(app_version)
    clients = arguments.bundle_ids(bundle_ids, info.context.settings.max_bundle_ids)
    return list(await asyncio.gather(*(_result(info.context, version, client) for client in clients)))


async def _result(context: Context, app_version: str, bundle_id: str) -> MiniAppVersionResult:
    # An upstream outcome becomes an item; anything else (a defect) fails the field and is masked.
    try:
        return await fetch_version(context, app_version, bundle_id)
    except GraphError as error:
        return _error_item(error, app_version, bundle_id)


async def mini_app_version_reference(context: Context, representation: Mapping[str, Any]) -> MiniAppVersion:
    """An Apollo Federation reference ``{__typename, appVersion, bundleId}``, checked like arguments."""
    version, client = representation.get("appVersion"), representation.get("bundleId")
    if not isinstance(version, str) or not isinstance(client, str):
        raise BadUserInput("a MiniAppVersion reference needs string fields appVersion and bundleId")
    return await fetch_version(context, arguments.app_version(version), arguments.bundle_id(client))


async def fetch_version(context: Context, app_version: str, bundle_id: str) -> MiniAppVersion:
    node = await context.version_detail(app_version, bundle_id)
    return MiniAppVersion.from_gateway(node, app_version=app_version, bundle_id=bundle_id)


def _error_item(error: GraphError, app_version: str, bundle_id: str) -> MiniAppVersionError:
    """One client's failure as a ``miniAppVersions`` item: the same facts a failed ``miniAppVersion`` carries."""
    return MiniAppVersionError(app_version=app_version, bundle_id=bundle_id, **error_facts(error))
