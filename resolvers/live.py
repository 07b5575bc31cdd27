"""``miniAppVersionChanged``: the state of a version on each client at once, then an event each time one changes.

The states come from the process's live hub (``graph.live.hub``): one poll per (merchant token, version, client)
however many subscribe, and the same items ``miniAppVersions`` answers with (a ``MiniAppVersion``, or a
``MiniAppVersionError`` for a client whose call failed). Arguments are checked as ``miniAppVersions`` checks them,
before any gateway call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator

from graph.data.freshness import Freshness
from graph.data.source import VersionKey
from graph.live.state import State
from graph.types.errors import MiniAppVersionError
from graph.types.version import MiniAppVersion
from resolvers import arguments
from resolvers.context import Context, Info, Loaders
from resolvers.loaders import api_loader, version_loader
from resolvers.version import MiniAppVersionResult


async def mini_app_version_changed(
    info: Info, app_version: str, bundle_ids: list[str] | None = None
) -> AsyncGenerator[MiniAppVersionResult, None]:
    context = info.context
    version = arguments.app_version(app_version)
    clients = arguments.bundle_ids(bundle_ids, context.settings.max_bundle_ids)
    hub = context.services.live
    if hub is None:  # pragma: no cover  (the services always carry a hub; a library user may build without one)
        raise RuntimeError("this service has no live hub")
    keys = [VersionKey(context.app_auth_token, version, client) for client in dict.fromkeys(clients)]
    woken = asyncio.Event()  # set by the hub when one of the keys has a new state
    hub.join(keys, woken)
    try:
        sent: dict[VersionKey, bytes] = {}
        for key, state in zip(keys, await asyncio.gather(*(hub.current(key) for key in keys)), strict=True):
            sent[key] = state.fingerprint
            yield _event(context, key, state)
        while True:
            await woken.wait()
            woken.clear()
            for key in keys:
                now = hub.state(key)
                if now is not None and now.fingerprint != sent[key]:
                    sent[key] = now.fingerprint
                    yield _event(context, key, now)
    finally:
        hub.leave(keys, woken)


def _event(context: Context, key: VersionKey, state: State) -> MiniAppVersionResult:
    """One event's item, with the context renewed as for a new operation: the fields under it (``experience``) load
    afresh, within a deadline of their own, and ``extensions`` say how old this answer is and whether it is stale."""
    source = context.services.source
    context.loaders = Loaders(version=version_loader(source, fresh=False), api=api_loader(source, fresh=False))
    context.deadline = asyncio.get_running_loop().time() + context.settings.operation_deadline_s
    context.freshness = Freshness(stale=state.stale)
    context.freshness.used(0.0 if state.stored_at is None else max(0.0, time.time() - state.stored_at), None)
    node = state.node
    if node is None:
        return MiniAppVersionError(app_version=key.app_version, bundle_id=key.bundle_id, **state.error)
    return MiniAppVersion.from_gateway(node, app_version=key.app_version, bundle_id=key.bundle_id)
