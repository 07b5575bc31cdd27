"""Who may call /graphql and how often: API keys, the merchant-token header, a token bucket per caller.

Made by the edge before it reads a request's body: ``Access.check`` answers with the caller or the refusal. The
caller is a fingerprint of the API key that matched (never the key), or None for an anonymous caller; anonymous
callers are rate limited by client address. With a Redis cache (``Services.redis``) both limits, per caller and
refused keys per address, are the fleet's (``SharedBuckets``): N instances allow the limit between them, not N
times it. Without Redis, or while it is unreachable, each instance keeps its own and says so once.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Collection
from dataclasses import dataclass

from redis.asyncio import Redis

from graph.config import Settings
from graph.fleet.buckets import SharedBuckets
from graph.fleet.redis import Reachability

TOKEN_HEADER = "x-alipay-app-auth-token"  # noqa: S105  (a header name)
# app_auth_tokens are ~40 characters of letters and digits; bound them so a header cannot carry anything else.
_TOKEN = re.compile(r"[A-Za-z0-9._-]{1,128}")


def fingerprint(key: str) -> str:
    """A name for an API key in rate-limit buckets and cache keys: tells keys apart, gives nothing away."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Caller:
    key: str | None  # the matched API key's fingerprint, None for anonymous
    app_auth_token: str | None  # X-Alipay-App-Auth-Token, checked for shape


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    message: str
    code: str
    headers: tuple[tuple[str, str], ...] = ()


class Access:
    @classmethod
    def for_settings(cls, settings: Settings, redis: Redis | None) -> Access:
        """The access the settings describe; with ``redis`` its limits are the fleet's."""
        return cls(
            api_keys=settings.api_keys,
            allow_anonymous=settings.allow_anonymous,
            per_minute=settings.rate_limit_per_min,
            failures_per_minute=settings.auth_failures_per_min,
            redis=redis,
        )

    def __init__(
        self,
        *,
        api_keys: Collection[str],
        allow_anonymous: bool,
        per_minute: int,
        failures_per_minute: int = 30,
        redis: Redis | None = None,
    ) -> None:
        self._keys = [(key.encode(), fingerprint(key)) for key in api_keys]
        self._anonymous = allow_anonymous
        # Both limits fall back together when Redis goes away: one line in the log says so for both.
        fallback = Reachability("rate limits and the refused-key limit")
        self.buckets = SharedBuckets(redis, per_minute, "rate", what=fallback) if per_minute else None
        # Refused keys, per client address. An address past its burst is refused before its key is compared, so
        # guessing keys goes no faster than the limit; it is the guessing address that waits, never a key: a real
        # key used from elsewhere is not touched (an address is all an attacker controls of its own requests).
        self.failures = (
            SharedBuckets(redis, failures_per_minute, "refused-keys", what=fallback)
            if failures_per_minute and self._keys
            else None
        )

    async def check(
        self, authorization: str | None, token: str | None, client: tuple[str, int] | None
    ) -> Caller | Refusal:
        address = client[0] if client else "-"
        if self.failures is not None:
            wait = await self.failures.wait(address)
            if wait:
                return _limited(wait, "too many refused API keys from this address (GRAPH_AUTH_FAILURES_PER_MIN)")
        authorised, key = self._authorised(authorization or "")
        if not authorised:
            if self.failures is not None:
                await self.failures.take(address)
            if not self._keys and not self._anonymous:
                message = (
                    "this service is closed: no API keys are configured (GRAPH_API_KEYS) and anonymous access is off"
                )
            else:
                message = "missing or unknown API key: send Authorization: Bearer <key>"
            return Refusal(401, message, "UNAUTHENTICATED", (("www-authenticate", "Bearer"),))
        if token is not None and not _TOKEN.fullmatch(token):
            return Refusal(
                400,
                "X-Alipay-App-Auth-Token is malformed (expected letters, digits, '.', '_' or '-')",
                "BAD_USER_INPUT",
            )
        if self.buckets is not None:
            wait = await self.buckets.take(f"key:{key}" if key else f"ip:{address}")
            if wait:
                per_minute = round(self.buckets.capacity)
                return _limited(
                    wait, f"rate limit of {per_minute} requests a minute reached (GRAPH_RATE_LIMIT_PER_MIN)"
                )
        return Caller(key, token or None)

    def _authorised(self, authorization: str) -> tuple[bool, str | None]:
        """(let in?, the matched key's fingerprint or None)."""
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() == "bearer" and key.strip():
            given = key.strip().encode()
            # Compare against every key, never stopping early: timing says nothing about which key nearly matched.
            matched = None
            for candidate, name in self._keys:
                if hmac.compare_digest(given, candidate):
                    matched = name
            return matched is not None, matched
        return self._anonymous, None


def _limited(wait: float, reason: str) -> Refusal:
    retry_after = max(1, math.ceil(wait))
    return Refusal(429, f"{reason}; retry after {retry_after} s", "RATE_LIMITED", (("retry-after", str(retry_after)),))
