"""The per-request DataLoaders in front of the data path (``graph.data.source``).

Everything one operation asks for goes through them: the detail query's (aliases, ``miniAppVersions`` items,
``_entities``, ``versions { detail }``) and one for the other read methods (keyed by method, merchant and
arguments). They deduplicate keys; each distinct key then goes through the process-wide ``VersionSource``.
There is no batch endpoint upstream, so a batch is a gather.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

from strawberry.dataloader import DataLoader

from graph.data.source import ApiKey, Fetched, VersionKey, VersionSource

K = TypeVar("K", VersionKey, ApiKey)


def version_loader(source: VersionSource, *, fresh: bool) -> DataLoader[VersionKey, Fetched]:
    return _loader(source, "version", fresh=fresh)


def api_loader(source: VersionSource, *, fresh: bool) -> DataLoader[ApiKey, Fetched]:
    return _loader(source, "api", fresh=fresh)


def _loader(source: VersionSource, name: str, *, fresh: bool) -> DataLoader[K, Fetched]:
    async def batch(keys: list[K]) -> list[Fetched | BaseException]:
        with source.tracing.span("dataloader.batch", {"loader": name, "batch.size": len(keys)}):
            # return_exceptions: an unexpected failure for one key (masked later) must not fail its siblings.
            fetched = await asyncio.gather(*(source.fetch(key, fresh=fresh) for key in keys), return_exceptions=True)
        return list(fetched)

    return DataLoader(load_fn=batch)
