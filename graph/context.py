"""What every resolver gets: the process's services, this request's loaders, and what it learned on the way."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import strawberry
from strawberry.dataloader import DataLoader

from graph.config import Settings
from graph.services import Services
from resolvers.loaders import Fetched, VersionKey, version_loader


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
    cache_ages: list[float] = field(default_factory=list)  # ages of the cached answers this operation used
    deadline: float | None = None  # event-loop time after which this operation stops waiting for the gateway
    planned_calls: set[object] = field(default_factory=set)  # gateway-call keys admitted so far (the budget)

    @property
    def settings(self) -> Settings:
        return self.services.settings


def build_context(
    services: Services, *, app_auth_token: str | None = None, request_id: str = "-", fresh: bool = False
) -> Context:
    """A fresh context per operation: loaders must never be shared between requests."""
    loaders = Loaders(version=version_loader(services.source, fresh=fresh))
    deadline = asyncio.get_running_loop().time() + services.settings.operation_deadline_s
    return Context(
        services, loaders, app_auth_token=app_auth_token, request_id=request_id, fresh=fresh, deadline=deadline
    )


Info = strawberry.Info[Context, None]
