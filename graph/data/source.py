"""The data path below the fields: cache → single-flight → bounded gateway call, for one key at a time.

Everything one operation asks for (aliases, ``miniAppVersions`` items, ``_entities``, the version list, base info,
trial builds) goes through the request's DataLoaders, which deduplicate keys. Each distinct key then goes through
the process-wide ``VersionSource``: a cache read, and on a miss one gateway call shared by every request asking the
same thing at the same time, bounded by GRAPH_MAX_CONCURRENCY. A key is (method, merchant token, arguments), so
tenants never share. There is no batch endpoint upstream, so a batch is a gather.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from graph.data.cache import AnswerCache, Entry
from graph.data.flight import SingleFlight
from graph.gateway.base import GatewayClient
from graph.gateway.errors import BusinessError, CircuitOpen, GatewayError
from graph.gateway.methods import VERSION_DETAIL
from graph.observability import request_state as request
from graph.observability.tracing import Tracing

VersionNode = dict[str, Any]


class ApiKey(NamedTuple):
    """One gateway call: a read method, the merchant it is made for, and its arguments in the method's order."""

    method: str
    app_auth_token: str | None  # part of the key: one merchant's answer never serves another
    args: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:  # the merchant token stays out of reprs, tracebacks and log lines
        token = "None" if self.app_auth_token is None else "'***'"
        return f"ApiKey(method={self.method!r}, app_auth_token={token}, args={self.args!r})"


class VersionKey(NamedTuple):
    app_auth_token: str | None  # part of the key: one merchant's answer never serves another
    app_version: str
    bundle_id: str

    def __repr__(self) -> str:  # the merchant token stays out of reprs, tracebacks and log lines
        token = "None" if self.app_auth_token is None else "'***'"
        return f"VersionKey(app_auth_token={token}, app_version={self.app_version!r}, bundle_id={self.bundle_id!r})"

    def api_key(self) -> ApiKey:
        return ApiKey(
            VERSION_DETAIL, self.app_auth_token, (("app_version", self.app_version), ("bundle_id", self.bundle_id))
        )


@dataclass(frozen=True, slots=True)
class Fetched:
    """One key's outcome: the verified node or the gateway error, and when it was stored if it came from cache."""

    outcome: VersionNode | GatewayError
    stored_at: float | None = None


def cache_key(app_id: str, key: VersionKey | ApiKey) -> str:
    # The token is hashed into the key, never stored in clear; the whole key is hashed so its length is bounded.
    # The method prefixes it, and its arguments come in the method's own order, so values alone tell keys apart
    # (for the detail query this is the key earlier versions wrote: their cached answers stay readable).
    key = key.api_key() if isinstance(key, VersionKey) else key
    token = hashlib.sha256(key.app_auth_token.encode()).hexdigest() if key.app_auth_token else "-"
    ident = json.dumps([app_id, token, *(value for _, value in key.args)], ensure_ascii=False)
    return f"{key.method}:{hashlib.sha256(ident.encode()).hexdigest()}"


class VersionSource:
    """Process-wide: the cache, the single-flight table and the bound on gateway calls in flight."""

    def __init__(
        self,
        client: GatewayClient,
        cache: AnswerCache[Entry],
        *,
        ttl_s: float,
        error_ttl_s: float,
        max_concurrency: int,
        clock: Callable[[], float] = time.time,
        tracing: Tracing | None = None,
    ) -> None:
        self.client = client
        self.cache = cache
        self.tracing = tracing or Tracing()
        self._ttl_s = ttl_s
        self._error_ttl_s = error_ttl_s
        self._limit = asyncio.Semaphore(max_concurrency)
        self._clock = clock
        self.flights: SingleFlight[tuple[str, bool], Fetched] = SingleFlight()

    async def fetch(self, key: VersionKey | ApiKey, *, fresh: bool = False) -> Fetched:
        key = key.api_key() if isinstance(key, VersionKey) else key
        ck = cache_key(self.client.app_id, key)
        # The cache read happens inside the flight: callers arriving while it runs share it, so a cold key
        # costs one gateway call however many ask at once. A fresh (no-cache) read never joins a cached one.
        return await self.flights.do((ck, fresh), lambda: self._fill(ck, key, fresh))

    async def _fill(self, ck: str, key: ApiKey, fresh: bool) -> Fetched:
        if not fresh:
            with self.tracing.span("cache.get", {"cache.name": "gateway", "cache.backend": self.cache.name}) as span:
                entry = await self.cache.get(ck)
                span.set("cache.hit", entry is not None)
            if entry is not None:
                state = request.current()
                if state is not None:
                    state.cache_hits += 1
                return _from_entry(entry)
        async with self._limit:
            try:
                node = await self.client.call(key.method, dict(key.args), app_auth_token=key.app_auth_token)
            except BusinessError as exc:
                if exc.signed:  # a signed refusal is a fact worth reusing briefly; an unsigned one is not
                    await self.cache.set(ck, _error_entry(exc, self._clock()), self._error_ttl_s)
                return Fetched(exc)
            except GatewayError as exc:  # transient or untrustworthy: never cached
                failure = exc
            else:
                await self.cache.set(ck, Entry("ok", node, self._clock()), self._ttl_s)
                return Fetched(node)
        if fresh and isinstance(failure, CircuitOpen):
            # The gateway is being left alone: a cached answer (its age in cacheAge) beats none, even for no-cache.
            entry = await self.cache.get(ck)
            if entry is not None:
                return _from_entry(entry)
        return Fetched(failure)

    def age_s(self, fetched: Fetched) -> float:
        return 0.0 if fetched.stored_at is None else max(0.0, self._clock() - fetched.stored_at)

    def ttl_left_s(self, fetched: Fetched) -> float | None:
        """How much longer this outcome may be reused, as the cache would: None for what is never cached."""
        outcome = fetched.outcome
        if isinstance(outcome, BusinessError) and outcome.signed:
            ttl = self._error_ttl_s
        elif isinstance(outcome, GatewayError):
            return None
        else:
            ttl = self._ttl_s
        return ttl - self.age_s(fetched)


def _error_entry(exc: BusinessError, now: float) -> Entry:
    payload = {"code": exc.code, "msg": exc.msg, "sub_code": exc.sub_code, "sub_msg": exc.sub_msg}
    return Entry("error", payload, now)


def _from_entry(entry: Entry) -> Fetched:
    if entry.kind == "ok":
        return Fetched(entry.payload, entry.stored_at)
    p = entry.payload
    error = BusinessError(str(p.get("code")), str(p.get("msg") or ""), p.get("sub_code"), p.get("sub_msg"), signed=True)
    return Fetched(error, entry.stored_at)
