"""What every resolver gets: the process's services, this request's loaders, and what it learned on the way.

The context is also how the lazily fetched fields of the types reach the gateway (``graph.types.upstream``):
each method loads one gateway call through the request's DataLoaders, within the operation's deadline, records
the answer's freshness, and returns the verified fields or raises the GraphQL error for the field that asked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import strawberry
from strawberry.dataloader import DataLoader

from graph.config import Settings
from graph.data.freshness import Freshness
from graph.data.source import ApiKey, Fetched, VersionKey
from graph.errors import AlipayUnavailable, from_gateway
from graph.gateway.errors import GatewayError
from graph.gateway.methods import BASE_INFO, EXPERIENCE, VERSION_LIST
from graph.services import Services
from resolvers import arguments
from resolvers.loaders import api_loader, version_loader

K = TypeVar("K", VersionKey, ApiKey)


@dataclass
class Loaders:
    version: DataLoader[VersionKey, Fetched]  # alipay.open.mini.version.detail.query
    api: DataLoader[ApiKey, Fetched]  # the other read methods


@dataclass
class Context:
    services: Services
    loaders: Loaders
    app_auth_token: str | None = field(default=None, repr=False)
    request_id: str = "-"
    fresh: bool = False  # Cache-Control: no-cache: skip cached answers (and refresh them)
    freshness: Freshness = field(default_factory=Freshness)  # what the answers used say about reuse
    deadline: float | None = None  # event-loop time after which this operation stops waiting for the gateway
    planned_calls: set[object] = field(default_factory=set)  # gateway-call keys admitted so far (the budget)

    @property
    def settings(self) -> Settings:
        return self.services.settings

    async def answer(self, loader: DataLoader[K, Fetched], key: K) -> dict[str, Any]:
        """One gateway call's verified fields through ``loader``; a GraphQL error when it failed."""
        load = loader.load(key)
        try:
            # shield: giving up on the answer must not cancel the loader's future, which its batch still resolves.
            async with asyncio.timeout_at(self.deadline):
                fetched = await asyncio.shield(load)
        except TimeoutError:
            raise AlipayUnavailable(
                "no answer from the gateway within the operation deadline (GRAPH_OPERATION_DEADLINE_S)"
            ) from None
        source = self.services.source
        self.freshness.used(source.age_s(fetched), source.ttl_left_s(fetched), stale=fetched.stale)
        if isinstance(fetched.outcome, GatewayError):
            raise from_gateway(fetched.outcome)
        return fetched.outcome

    async def version_detail(self, app_version: str, bundle_id: str) -> dict[str, Any]:
        return await self.answer(self.loaders.version, VersionKey(self.app_auth_token, app_version, bundle_id))

    async def base_info(self) -> dict[str, Any]:
        return await self.answer(self.loaders.api, ApiKey(BASE_INFO, self.app_auth_token))

    async def experience(self, app_version: str, bundle_id: str) -> dict[str, Any]:
        args = (("app_version", app_version), ("bundle_id", bundle_id))
        return await self.answer(self.loaders.api, ApiKey(EXPERIENCE, self.app_auth_token, args))

    async def version_list(
        self, bundle_id: str, statuses: list[str] | None, first: int | None
    ) -> list[Mapping[str, Any]] | None:
        client, asked, most = arguments.bundle_id(bundle_id), arguments.statuses(statuses), arguments.first(first)
        if not asked or most == 0:
            return []  # nothing to list: no call
        # Statuses in one canonical order, so that aliases asking the same set share one call.
        args = (("bundle_id", client), ("version_status", ",".join(asked)))
        node = await self.answer(self.loaders.api, ApiKey(VERSION_LIST, self.app_auth_token, args))
        infos = node.get("app_version_infos")
        if not isinstance(infos, list):
            return None
        items = [item for item in infos if isinstance(item, Mapping)]
        return items if most is None else items[:most]


def build_context(
    services: Services,
    *,
    app_auth_token: str | None = None,
    request_id: str = "-",
    fresh: bool = False,
    freshness: Freshness | None = None,
) -> Context:
    """A fresh context per operation: loaders must never be shared between requests."""
    loaders = Loaders(
        version=version_loader(services.source, fresh=fresh), api=api_loader(services.source, fresh=fresh)
    )
    return Context(
        services,
        loaders,
        app_auth_token=app_auth_token,
        request_id=request_id,
        fresh=fresh,
        freshness=freshness or Freshness(),
        deadline=asyncio.get_running_loop().time() + services.settings.operation_deadline_s,
    )


Info = strawberry.Info[Context, None]
