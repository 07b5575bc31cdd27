"""What every resolver gets: the process's services, this request's loaders, and what it learned on the way."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import strawberry
from strawberry.dataloader import DataLoader

from graph.config import Settings
from graph.data.freshness import Freshness
from graph.data.source import Fetched, VersionKey
from graph.services import Services
from resolvers.loaders import version_loader


@dataclass
class Loaders:
    version: DataLoader[VersionKey, Fetched]


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


def build_context(
    services: Services,
    *,
    app_auth_token: str | None = None,
    request_id: str = "-",
    fresh: bool = False,
    freshness: Freshness | None = None,
) -> Context:
    """A fresh context per operation: loaders must never be shared between requests."""
    loaders = Loaders(version=version_loader(services.source, fresh=fresh))
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
