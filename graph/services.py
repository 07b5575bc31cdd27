"""What a process builds once and every request shares: the settings, the pooled gateway client, the bound."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx

from graph.config import Settings
from graph.gateway.base import GatewayClient
from graph.gateway.client import AlipayClient
from graph.gateway.v3 import AlipayV3Client


@dataclass(frozen=True)
class Services:
    settings: Settings
    client: GatewayClient  # AlipayClient (v2) or AlipayV3Client (v3): the same interface
    limit: asyncio.Semaphore  # GRAPH_MAX_CONCURRENCY: gateway calls in flight in this process
    gateway_url: str
    sandbox: Any = None  # the embedded sandbox gateway under --demo, else None

    async def aclose(self) -> None:
        await self.client.aclose()


def build_services(settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None) -> Services:
    """Open the gateway client for the configured protocol; under ``--demo``, against an in-process sandbox."""
    credentials, gateway_url, sandbox = settings.credentials, settings.gateway_url, None
    if settings.demo:
        from graph.demo import start_demo  # the sandbox and its key generation load only for --demo

        demo = start_demo(settings.protocol)
        credentials, gateway_url, sandbox = demo.credentials, demo.gateway_url, demo.sandbox
        transport = transport or demo.transport
    if credentials is None:
        raise ValueError("settings carry no credentials and are not in demo mode")
    client_class = AlipayV3Client if settings.protocol == "v3" else AlipayClient
    client = client_class(
        credentials,
        gateway_url=gateway_url,
        timeout_s=settings.timeout_s,
        retries=settings.retries,
        transport=transport,
        max_connections=settings.max_concurrency,
    )
    return Services(settings, client, asyncio.Semaphore(settings.max_concurrency), gateway_url, sandbox)
