"""Per-caller rate limit on /graphql (GRAPH_RATE_LIMIT_PER_MIN): 429 with ``Retry-After`` when spent.

A token bucket per caller: it holds up to the per-minute limit and refills at limit/60 a second, so a caller
may burst up to the limit and sustain the limit per minute. The caller is the API key that ``Guard`` matched
(``scope["state"]["caller"]``, a fingerprint, never the key) or, for anonymous callers, the client address.
Memory is bounded: at most ``max_callers`` buckets, the least recently seen dropped first (a dropped caller
starts again with a full bucket, which a caller could only exploit from more addresses than the bound).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from graph.refusal import refusal

MAX_CALLERS = 10000


class TokenBuckets:
    def __init__(
        self, per_minute: int, *, max_callers: int = MAX_CALLERS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens a second
        self.max_callers = max_callers
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, at); dict order = recency

    def take(self, caller: str) -> float:
        """Spend one token: 0.0 when allowed, else the seconds until one is back."""
        now = self._clock()
        tokens, at = self._buckets.pop(caller, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[caller] = (tokens, now)  # re-inserted at the end: the most recently seen
        while len(self._buckets) > self.max_callers:
            del self._buckets[next(iter(self._buckets))]
        return wait

    def __len__(self) -> int:
        return len(self._buckets)


class RateLimit:
    """Pure ASGI, after ``Guard`` (which refuses unknown keys and says who the caller is)."""

    def __init__(
        self, app: ASGIApp, *, per_minute: int, graphql_path: str = "/graphql", buckets: TokenBuckets | None = None
    ) -> None:
        self.app = app
        self._path = graphql_path
        self.buckets = buckets if buckets is not None else TokenBuckets(per_minute) if per_minute else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.buckets is None or scope["type"] != "http" or scope["path"] != self._path:
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(_caller(scope))
        if not wait:
            await self.app(scope, receive, send)
            return
        retry_after = max(1, math.ceil(wait))
        per_minute = round(self.buckets.capacity)
        response = refusal(
            429,
            f"rate limit of {per_minute} requests a minute reached (GRAPH_RATE_LIMIT_PER_MIN); "
            f"retry after {retry_after} s",
            "RATE_LIMITED",
            {"Retry-After": str(retry_after)},
        )
        await response(scope, receive, send)


def _caller(scope: Scope) -> str:
    caller = scope.get("state", {}).get("caller")
    if caller:
        return f"key:{caller}"
    client = scope.get("client")
    return f"ip:{client[0] if client else '-'}"
