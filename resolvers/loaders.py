"""The per-request DataLoader in front of the data path (``graph.data.source``).

Everything one operation asks for (aliases, ``miniAppVersions`` items, ``_entities``) goes through one per-request
DataLoader, which deduplicates keys; each distinct key then goes through the process-wide ``VersionSource``.
There is no batch endpoint upstream, so a batch is a gather.
"""

from __future__ import annotations

import asyncio

from strawberry.dataloader import DataLoader

from graph.data.source import Fetched, VersionKey, VersionSource


def version_loader(source: VersionSource, *, fresh: bool) -> DataLoader[VersionKey, Fetched]:
    async def batch(keys: list[VersionKey]) -> list[Fetched | BaseException]:
        with source.tracing.span("dataloader.batch", {"loader": "version", "batch.size": len(keys)}):
            # return_exceptions: an unexpected failure for one key (masked later) must not fail its siblings.
            fetched = await asyncio.gather(*(source.fetch(key, fresh=fresh) for key in keys), return_exceptions=True)
        return list(fetched)

    return DataLoader(load_fn=batch)
