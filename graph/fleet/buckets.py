"""Token buckets: one process's own (``TokenBuckets``), and the fleet's, kept in Redis (``SharedBuckets``).

A bucket holds up to ``per_minute`` tokens and refills at ``per_minute / 60`` a second: a caller may burst up to the
limit and sustains the limit per minute. ``SharedBuckets`` keeps one bucket per (name, caller) in Redis, changed by
one Lua script that reads the time from Redis's own ``TIME`` (instances' clocks never enter the sum), so N instances
enforce one limit between them, not N. When there is no Redis (``memory://``), or a call fails or times out, it
spends from its own ``TokenBuckets`` instead and ``Reachability`` says so once; a failed Redis is asked again after
``RETRY_S`` (one request a second pays the probe, not every one).

Why not the ``limits`` package (5.x, read at 5.8.0), whose async Redis strategies are well kept:

- its strategies are windows, not a bucket: the moving window keeps one list entry per hit (a list of ``limit``
  timestamps per caller), the sliding-window counter approximates from two fixed windows; neither has the
  token bucket's semantics this service states and tests (burst up to the limit, then one request every 60/limit s,
  ``Retry-After`` the time until the next token: 20 s at 3 a minute, where a window says up to 60 s);
- the moving window stamps hits with the instance's ``time.time()`` (passed into its Lua), so instances whose clocks
  differ disagree on the window; here the script asks Redis for the time;
- it opens its own client from a URI (coredis by default, redis-py on request), a second connection pool beside the
  one the process already has (``Services.redis``), and brings ``deprecated``/``wrapt``/``packaging`` with it;
- it has no fallback: a storage error is raised (or wrapped in ``StorageError``), so the fallback to local limits,
  the once-only warning and the retry pacing, the part that needs care, would be ours anyway. The bucket itself is
  one short script.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from graph.fleet.redis import PREFIX, Reachability

MAX_CALLERS = 10000
RETRY_S = 1.0  # while Redis is failing, how often a request tries it again (the others go local at once)

# KEYS[1]: the bucket (a hash: tokens, at). ARGV: capacity, rate (tokens a second), cost, spend ("1" or "0").
# Returns {seconds until `cost` tokens are there (0 when they are), tokens left}, as strings: Redis truncates Lua
# numbers to integers. The key expires when the bucket would be full again, where a missing key means full.
_SCRIPT = """
pcall(redis.replicate_commands)  -- Redis < 5 needs it to write after TIME; later ones always replicate effects
local capacity, rate, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = capacity
if state[1] and state[2] then
  tokens = math.min(capacity, tonumber(state[1]) + math.max(0, now - tonumber(state[2])) * rate)
end
local wait = 0
if tokens >= cost then
  if ARGV[4] == '1' then tokens = tokens - cost end
else
  wait = (cost - tokens) / rate
end
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%.6f', now))
  redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((capacity - tokens) / rate * 1000)))
end
return {string.format('%.17g', wait), string.format('%.17g', tokens)}
"""


class TokenBuckets:
    """A token bucket per caller: it holds up to the per-minute limit and refills at limit/60 a second, so a caller
    may burst up to the limit and sustain the limit per minute. At most ``max_callers`` buckets, the least recently
    seen dropped first (a dropped caller starts again full, which only helps a caller with more addresses than
    the bound)."""

    def __init__(
        self, per_minute: int, *, max_callers: int = MAX_CALLERS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens a second
        self.max_callers = max_callers
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, at); dict order = recency

    def take(self, caller: str, cost: int = 1) -> float:
        """Spend ``cost`` tokens: 0.0 when allowed, else the seconds until they are back (nothing is spent)."""
        now = self._clock()
        tokens = self._refilled(self._buckets.pop(caller, None), now)
        wait = 0.0
        if tokens >= cost:
            tokens -= cost
        else:
            wait = (cost - tokens) / self.rate
        self._buckets[caller] = (tokens, now)  # re-inserted at the end: the most recently seen
        while len(self._buckets) > self.max_callers:
            del self._buckets[next(iter(self._buckets))]
        return wait

    def wait(self, caller: str, cost: int = 1) -> float:
        """The seconds until ``caller`` has ``cost`` tokens again (0.0: it has them), spending nothing."""
        tokens = self.remaining(caller)
        return 0.0 if tokens >= cost else (cost - tokens) / self.rate

    def remaining(self, caller: str) -> float:
        """The tokens ``caller`` has now."""
        return self._refilled(self._buckets.get(caller), self._clock())

    def _refilled(self, state: tuple[float, float] | None, now: float) -> float:
        """The tokens a bucket holds at ``now`` (a caller not seen yet has a full one)."""
        if state is None:
            return self.capacity
        tokens, at = state
        return min(self.capacity, tokens + (now - at) * self.rate)

    def __len__(self) -> int:
        return len(self._buckets)


class SharedBuckets:
    """A token bucket per caller shared by every instance on one Redis, under ``name`` (e.g. ``"rate"``), with the
    process's own ``TokenBuckets`` as the fallback. ``what`` names what falls back, in the log lines, or is the
    ``Reachability`` of other limiters this one falls back with, so that they say it once between them."""

    def __init__(
        self,
        redis: Redis | None,
        per_minute: int,
        name: str,
        *,
        what: str | Reachability,
        max_callers: int = MAX_CALLERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("a token bucket needs a positive limit (0 means no limiter: build none)")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.local = TokenBuckets(per_minute, max_callers=max_callers, clock=clock)
        self.reachability = what if isinstance(what, Reachability) else Reachability(what)
        self._script = redis.register_script(_SCRIPT) if redis is not None else None
        self._prefix = f"{PREFIX}bucket:{name}:"
        self._clock = clock
        self._retry_at = 0.0  # while Redis fails: when to ask it again

    @property
    def shared(self) -> bool:
        """Whether the last answer came from Redis (False: no Redis, or it failed and this instance is alone)."""
        return self._script is not None and self.reachability.reachable

    def key(self, caller: str) -> str:
        """The bucket's Redis key: callers are hashed (they may be long, or anything a client sent)."""
        return self._prefix + hashlib.sha256(caller.encode()).hexdigest()[:32]

    async def take(self, caller: str, cost: int = 1) -> float:
        """Spend ``cost`` tokens: 0.0 when allowed, else the seconds until they are back (nothing is spent)."""
        answer = await self._ask(caller, cost, spend=True)
        return self.local.take(caller, cost) if answer is None else answer[0]

    async def spend(self, caller: str, cost: int = 1) -> tuple[float, float]:
        """``take``, and the tokens left after it (for a gauge of what remains), in the same round trip."""
        answer = await self._ask(caller, cost, spend=True)
        if answer is None:
            wait = self.local.take(caller, cost)
            return wait, self.local.remaining(caller)
        return answer

    async def wait(self, caller: str, cost: int = 1) -> float:
        """The seconds until ``caller`` has ``cost`` tokens (0.0: it has them), spending nothing."""
        answer = await self._ask(caller, cost, spend=False)
        return self.local.wait(caller, cost) if answer is None else answer[0]

    async def remaining(self, caller: str) -> float:
        """The tokens ``caller`` has now (fleet-wide when Redis answers)."""
        answer = await self._ask(caller, 1, spend=False)
        return self.local.remaining(caller) if answer is None else answer[1]

    async def _ask(self, caller: str, cost: int, *, spend: bool) -> tuple[float, float] | None:
        """(wait, tokens) from Redis, or None: no Redis, or it failed (now or less than RETRY_S ago)."""
        if self._script is None or (not self.reachability.reachable and self._clock() < self._retry_at):
            return None
        args = (repr(self.capacity), repr(self.rate), cost, "1" if spend else "0")
        try:
            wait, tokens = await self._script(keys=[self.key(caller)], args=args)
        except (RedisError, OSError) as exc:  # OSError: TimeoutError and refused connections beneath redis-py
            self.reachability.failed(exc)
            self._retry_at = self._clock() + RETRY_S
            return None
        self.reachability.answered()
        return float(wait), float(tokens)
