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
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from graph.data.cache import AnswerCache, Entry
from graph.data.flight import SingleFlight
from graph.fleet.flight import FleetFlight
from graph.gateway.base import GatewayClient
from graph.gateway.errors import BudgetSpent, BusinessError, GatewayError, SignatureError
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
    stale: bool = False  # an expired answer served because the gateway could not give a fresh one


class Budget(Protocol):
    """Gateway calls a merchant may still make (``graph.fleet.buckets``: shared by the fleet through Redis)."""

    async def spend(self, caller: str, cost: int = 1) -> tuple[float, float]:
        """(0.0, tokens left) when allowed, else (seconds until allowed, tokens left)."""
        ...


def cache_key(app_id: str, key: VersionKey | ApiKey) -> str:
    # The token is hashed into the key, never stored in clear; the whole key is hashed so its length is bounded.
    # The method prefixes it, and its arguments come in the method's own order, so values alone tell keys apart
    # (for the detail query this is the key earlier versions wrote: their cached answers stay readable).
    key = key.api_key() if isinstance(key, VersionKey) else key
    token = hashlib.sha256(key.app_auth_token.encode()).hexdigest() if key.app_auth_token else "-"
    ident = json.dumps([app_id, token, *(value for _, value in key.args)], ensure_ascii=False)
    return f"{key.method}:{hashlib.sha256(ident.encode()).hexdigest()}"


class VersionSource:
    """Process-wide: the cache, the single-flight table and the bounds on gateway calls (in flight, per minute).

    An answer is fresh for ``ttl_s`` and kept ``stale_s`` longer: while the gateway cannot answer (down, circuit
    open, budget spent) an expired answer is served, marked stale, rather than none; business errors never are.
    ``Cache-Control: no-cache`` (``fresh``) refreshes a key at most once every ``min_refresh_s``: the stored
    answer's age says when it was last fetched, in whichever instance, so the bound holds for the fleet.
    """

    def __init__(
        self,
        client: GatewayClient,
        cache: AnswerCache[Entry],
        *,
        ttl_s: float,
        error_ttl_s: float,
        max_concurrency: int,
        stale_s: float = 0.0,
        min_refresh_s: float = 0.0,
        budget: Budget | None = None,
        fleet: FleetFlight | None = None,
        clock: Callable[[], float] = time.time,
        tracing: Tracing | None = None,
    ) -> None:
        self.client = client
        self.cache = cache
        self.tracing = tracing or Tracing()
        self._ttl_s = ttl_s
        self._error_ttl_s = error_ttl_s
        self._stale_s = stale_s
        self._min_refresh_s = min_refresh_s
        self._budget = budget
        self.fleet = fleet
        self._limit = asyncio.Semaphore(max_concurrency)
        self._clock = clock
        self.flights: SingleFlight[tuple[str, bool, bool], Fetched] = SingleFlight()
        self.refreshes: Counter[str] = Counter()  # forced refreshes: refreshed, or throttled (a recent answer served)
        self.stale_served = 0
        self.budget_refused = 0
        self.budget_remaining: float | None = None  # calls left to the merchant that spent last (fleet-wide)

    async def fetch(self, key: VersionKey | ApiKey, *, fresh: bool = False, poll: bool = False) -> Fetched:
        """The key's outcome. ``fresh``: a caller's no-cache (a refresh, at most once per min_refresh_s); ``poll``: a
        live poll, always a refresh (polls are bounded already: one per key and interval for the whole fleet)."""
        key = key.api_key() if isinstance(key, VersionKey) else key
        ck = cache_key(self.client.app_id, key)
        # The cache read happens inside the flight: callers arriving while it runs share it, so a cold key
        # costs one gateway call however many ask at once. A fresh (no-cache) read never joins a cached one.
        fresh = fresh or poll
        return await self.flights.do((ck, fresh, poll), lambda: self._fill(ck, key, fresh, poll))

    async def _fill(self, ck: str, key: ApiKey, fresh: bool, poll: bool = False) -> Fetched:
        with self.tracing.span("cache.get", {"cache.name": "gateway", "cache.backend": self.cache.name}) as span:
            entry = await self.cache.get(ck, usable=self._usable)
            usable = entry is not None and self._usable(entry)
            span.set("cache.hit", usable)
        # A no-cache read within GRAPH_CACHE_MIN_REFRESH_S of the last fetch takes that answer; a live poll never does.
        recent = entry is not None and not poll and self._age(entry.stored_at) < self._min_refresh_s
        if entry is not None and usable and (not fresh or recent):
            if fresh:
                self.refreshes["throttled"] += 1
            state = request.current()
            if state is not None:
                state.cache_hits += 1
            return _from_entry(entry)
        if fresh and not poll:
            self.refreshes["refreshed"] += 1
        fetched = await self._across_fleet(ck, key, entry)
        failure = fetched.outcome
        if isinstance(failure, GatewayError) and _unavailable(failure) and entry is not None and entry.kind == "ok":
            # Something we knew beats nothing: fresh still (a forced refresh that failed), or stale within bounds.
            if usable:
                return _from_entry(entry)
            if self._age(entry.stored_at) < self._ttl_s + self._stale_s:
                self.stale_served += 1
                return Fetched(entry.payload, entry.stored_at, stale=True)
        return fetched

    async def _across_fleet(self, ck: str, key: ApiKey, seen: Entry | None) -> Fetched:
        """The call, made by one instance of the fleet: this one, or another whose answer lands in the cache."""
        if self.fleet is None:
            return await self._call(ck, key)
        lease = await self.fleet.lead(ck)
        if lease is not None:
            try:
                return await self._call(ck, key)
            finally:
                await lease.release()
        since = None if seen is None else seen.stored_at

        async def answered() -> Entry | None:
            entry = await self.cache.get(ck, counted=False)
            return entry if entry is not None and (since is None or entry.stored_at > since) else None

        entry = await self.fleet.wait(ck, answered)
        return _from_entry(entry) if entry is not None else await self._call(ck, key)

    async def _call(self, ck: str, key: ApiKey) -> Fetched:
        budget = self._budget
        admit = None if budget is None else self._admit(budget, _merchant(self.client.app_id, key.app_auth_token))
        async with self._limit:
            try:
                node = await self.client.call(
                    key.method, dict(key.args), app_auth_token=key.app_auth_token, admit=admit
                )
            except BusinessError as exc:
                if exc.signed:  # a signed refusal is a fact worth reusing briefly; an unsigned one is not
                    await self.cache.set(ck, _error_entry(exc, self._clock()), self._error_ttl_s)
                return Fetched(exc)
            except BudgetSpent as exc:
                self.budget_refused += 1
                return Fetched(exc)
            except GatewayError as exc:  # transient or untrustworthy: never cached
                return Fetched(exc)
        # Kept past its freshness for stale-if-error; reads tell fresh from stale by its age.
        await self.cache.set(ck, Entry("ok", node, self._clock()), self._ttl_s + self._stale_s)
        return Fetched(node)

    def _admit(self, budget: Budget, merchant: str) -> Callable[[], Awaitable[float]]:
        async def admit() -> float:
            wait, self.budget_remaining = await budget.spend(merchant)
            return wait

        return admit

    @property
    def fleet_waited(self) -> int:
        return 0 if self.fleet is None else self.fleet.waited

    def _age(self, stored_at: float) -> float:
        return max(0.0, self._clock() - stored_at)

    def _usable(self, entry: Entry) -> bool:
        """Fresh enough to answer with when the gateway is up: within its kind's lifetime."""
        return self._age(entry.stored_at) < (self._ttl_s if entry.kind == "ok" else self._error_ttl_s)

    def age_s(self, fetched: Fetched) -> float:
        return 0.0 if fetched.stored_at is None else self._age(fetched.stored_at)

    def ttl_left_s(self, fetched: Fetched) -> float | None:
        """How much longer this outcome may be reused, as the cache would: None for what is never cached."""
        outcome = fetched.outcome
        if fetched.stale or (isinstance(outcome, GatewayError) and not isinstance(outcome, BusinessError)):
            return None
        if isinstance(outcome, BusinessError):
            return self._error_ttl_s - self.age_s(fetched) if outcome.signed else None
        return self._ttl_s - self.age_s(fetched)


def _unavailable(error: GatewayError) -> bool:
    """The gateway could not be asked or did not answer: what stale-if-error covers (never a refusal, never a
    signature that failed: those are answers)."""
    return not isinstance(error, BusinessError | SignatureError)


def _merchant(app_id: str, app_auth_token: str | None) -> str:
    # The budget's bucket: Alipay counts calls per app, and per merchant an ISV acts for. The token is never kept.
    token = hashlib.sha256(app_auth_token.encode()).hexdigest()[:32] if app_auth_token else "-"
    return f"{app_id}:{token}"


def _error_entry(exc: BusinessError, now: float) -> Entry:
    payload = {"code": exc.code, "msg": exc.msg, "sub_code": exc.sub_code, "sub_msg": exc.sub_msg}
    return Entry("error", payload, now)


def _from_entry(entry: Entry) -> Fetched:
    if entry.kind == "ok":
        return Fetched(entry.payload, entry.stored_at)
    p = entry.payload
    error = BusinessError(str(p.get("code")), str(p.get("msg") or ""), p.get("sub_code"), p.get("sub_msg"), signed=True)
    return Fetched(error, entry.stored_at)
