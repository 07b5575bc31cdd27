"""What a process builds once and every request shares: settings, the gateway client, the cache, the data path."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from redis.asyncio import Redis

from graph.config import Settings
from graph.data.cache import TEXT, AnswerCache, Entry, open_cache, open_store
from graph.data.lru import SizedLRU
from graph.data.source import VersionSource
from graph.fleet.buckets import SharedBuckets
from graph.fleet.flight import FleetFlight
from graph.fleet.redis import open_redis
from graph.fleet.seal import Seal, derive_key
from graph.gateway.base import GatewayClient
from graph.gateway.breaker import CircuitBreaker
from graph.gateway.client import AlipayClient
from graph.gateway.v3 import AlipayV3Client
from graph.observability.telemetry import Telemetry

if TYPE_CHECKING:
    from graph.sandbox.demo import Demo
from graph.data.responses import RESPONSES, CachedResponse, response_size


@dataclass(frozen=True)
class Services:
    settings: Settings
    client: GatewayClient  # AlipayClient (v2) or AlipayV3Client (v3): the same interface
    cache: AnswerCache[Entry]  # gateway answers
    responses: AnswerCache[CachedResponse]  # whole GraphQL responses (same backend kind; its own bound in memory)
    documents: AnswerCache[str]  # documents registered by APQ, by the SHA-256 of their text (its own bound in memory)
    source: VersionSource
    gateway_url: str
    telemetry: Telemetry
    sandbox: Any = None  # the embedded sandbox gateway under --demo, else None
    # Parsed and validated documents by their text (graph/execution/complexity.py), bounded in bytes like the caches.
    parsed: SizedLRU[Any, Any] = field(default_factory=lambda: SizedLRU(Settings.cache_max_bytes))
    # What the fleet shares beside the cache (graph/fleet): None with memory://, where every instance is alone.
    redis: Redis | None = None
    # Authenticates what instances share through Redis (graph.fleet.seal): None with memory://.
    seal: Seal | None = None

    async def aclose(self) -> None:
        await self.client.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        await self.cache.close()
        await self.responses.close()
        await self.documents.close()


def build_services(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    telemetry: Telemetry | None = None,
    demo: Demo | None = None,
) -> Services:
    """Open the gateway client for the configured protocol and the caches; with ``demo`` (``--demo``: the app
    starts it), against that in-process sandbox gateway."""
    telemetry = telemetry or Telemetry()
    credentials, gateway_url, sandbox = settings.credentials, settings.gateway_url, None
    if demo is not None:
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
        observer=telemetry,
        deadline_s=settings.operation_deadline_s,
        breaker=CircuitBreaker(
            gateway_url,
            failures=settings.breaker_failures,
            reset_s=settings.breaker_reset_s,
            on_change=telemetry.breaker,
        ),
    )
    # Each in-process cache is bounded by GRAPH_CACHE_MAX_BYTES of what it keeps, and by GRAPH_CACHE_MAX_ENTRIES.
    max_bytes, max_entries = settings.cache_max_bytes, settings.cache_max_entries
    # What goes to Redis is sealed: GRAPH_CACHE_SIGNING_KEY, else a key derived from the app private key, so one
    # merchant's instances agree with no new setting (under --demo the keys, hence the seal, are the process's own).
    seal = None
    if settings.cache_url.startswith("redis:"):
        seal = Seal(settings.cache_signing_key or derive_key(credentials.private_key))
    cache = open_cache(settings.cache_url, max_bytes=max_bytes, max_entries=max_entries, seal=seal)
    # Whole responses are immutable and hold a few objects each: kept as they are in memory (a hit parses nothing),
    # sized by their body; one larger than GRAPH_RESPONSE_MAX_CACHED_BYTES is served but not kept.
    responses = open_store(
        settings.cache_url,
        RESPONSES,
        max_bytes=max_bytes,
        max_entries=max_entries,
        size=response_size,
        max_item_bytes=settings.response_max_cached_bytes,
        seal=seal,
        store="response",
    )
    redis = open_redis(settings.cache_url)
    source = VersionSource(
        client,
        cache,
        ttl_s=settings.cache_ttl_s,
        error_ttl_s=settings.cache_error_ttl_s,
        max_concurrency=settings.max_concurrency,
        stale_s=settings.cache_stale_s,
        min_refresh_s=settings.cache_min_refresh_s,
        # A lease outlives one operation's wait for the gateway: a holder that died frees the key by then.
        fleet=None if redis is None else FleetFlight(redis, lease_s=settings.operation_deadline_s + 1.0),
        # Every gateway call, retries included, spends from its merchant's budget: Alipay's quotas are per app.
        budget=(
            SharedBuckets(redis, settings.max_calls_per_min, "budget", what="upstream budgets")
            if settings.max_calls_per_min
            else None
        ),
        tracing=telemetry.tracing,
    )
    # Registered documents are content-addressed (the key is the text's SHA-256), so instances sharing Redis share
    # them safely: not sealed, since a reader re-hashes what it reads (graph.http.persisted) and that already proves
    # the text is the one registered under the key. The memory store has its own bound: a caller can register many.
    documents = open_store(
        settings.cache_url, TEXT, max_bytes=max_bytes, max_entries=settings.apq_max_documents, store="documents"
    )
    telemetry.metrics.watch(lambda: (cache, responses, documents, source.flights, source))
    parsed: SizedLRU[Any, Any] = SizedLRU(settings.cache_max_bytes)
    return Services(
        settings, client, cache, responses, documents, source, gateway_url, telemetry, sandbox, parsed, redis, seal
    )
