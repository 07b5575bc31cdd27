"""What every resolver gets: the process's client and settings, and this request's loaders."""

from __future__ import annotations

from dataclasses import dataclass, field

import strawberry
from strawberry.dataloader import DataLoader

from graph.config import Settings
from graph.services import Services
from resolvers.loaders import VersionKey, VersionNode, version_loader


@dataclass
class Loaders:
    version: DataLoader[VersionKey, VersionNode]


@dataclass
class Context:
    services: Services
    loaders: Loaders
    app_auth_token: str | None = field(default=None, repr=False)
    request_id: str = "-"

    @property
    def settings(self) -> Settings:
        return self.services.settings


def build_context(services: Services, *, app_auth_token: str | None = None, request_id: str = "-") -> Context:
    """A fresh context per operation: loaders must never be shared between requests."""
    loaders = Loaders(version=version_loader(services.client, services.limit))
    return Context(services=services, loaders=loaders, app_auth_token=app_auth_token, request_id=request_id)


Info = strawberry.Info[Context, None]
