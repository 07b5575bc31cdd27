"""Per-request batching of gateway calls.

Everything one operation asks for (aliases, ``miniAppVersions`` items, ``_entities``) goes through one
DataLoader, which deduplicates keys; the batch then runs the distinct calls concurrently, bounded by a
per-process semaphore (GRAPH_MAX_CONCURRENCY). There is no batch endpoint upstream, so a batch is a gather
with one result or one exception per key: one bad key fails only its own field.
"""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple

from strawberry.dataloader import DataLoader

from graph.errors import from_gateway
from graph.gateway.base import GatewayClient
from graph.gateway.errors import GatewayError


class VersionKey(NamedTuple):
    app_auth_token: str | None  # part of the key: one merchant's answer never serves another
    app_version: str
    bundle_id: str


VersionNode = dict[str, Any]


async def load_versions(
    client: GatewayClient, limit: asyncio.Semaphore, keys: list[VersionKey]
) -> list[VersionNode | BaseException]:
    async def one(key: VersionKey) -> VersionNode:
        async with limit:
            try:
                return await client.version_detail(key.app_version, key.bundle_id, key.app_auth_token)
            except GatewayError as exc:
                raise from_gateway(exc) from None

    # return_exceptions: an unexpected failure for one key (masked later) must not fail its siblings.
    return list(await asyncio.gather(*(one(key) for key in keys), return_exceptions=True))


def version_loader(client: GatewayClient, limit: asyncio.Semaphore) -> DataLoader[VersionKey, VersionNode]:
    async def batch(keys: list[VersionKey]) -> list[VersionNode | BaseException]:
        return await load_versions(client, limit, keys)

    return DataLoader(load_fn=batch)
