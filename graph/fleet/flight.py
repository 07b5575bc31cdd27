"""Single-flight across instances: one gateway call for one cold key, however many instances ask at once.

Within a process ``graph.data.flight.SingleFlight`` already joins identical calls; across the fleet the first
instance to miss takes a short lease on the key (redis-py's ``Lock``: ``SET NX PX`` with a random token, released by
a compare-and-delete script, the well-kept version of exactly this) and calls; the others wait for the answer to
appear in the shared cache instead of calling. We use the lock only to decide who calls, not its blocking
``acquire``: that polls the lock, while a waiter wants the cache entry, which can arrive before the lock is
released and is all it needs.

Failures are not cached, so when the holder's call fails the lease goes and the waiters find no answer: each then
calls itself (its own breaker and the shared budget bound that). Redis trouble means acting alone, said once.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError

from graph.fleet.redis import PREFIX, Reachability

T = TypeVar("T")
POLL_S = (0.005, 0.01, 0.02, 0.04, 0.05)  # waits between looks at the cache: quick first, then every 50 ms


class FleetFlight:
    """Who calls for a key across the fleet (``lead``), and waiting for the one who does (``wait``)."""

    def __init__(self, redis: Redis, *, lease_s: float) -> None:
        self._redis = redis
        self.lease_s = lease_s  # longer than one call may take (the operation deadline): a dead holder's lease ends
        self.reach = Reachability("single-flight joins")
        self.waited = 0  # calls this instance did not make because another instance made them
        self.acted_alone = 0  # leases not taken because Redis did not answer

    async def lead(self, key: str) -> Lease | None:
        """The lease when this instance should call (release it after), None when another instance holds it.

        With Redis unreachable this instance calls alone: a lease that was never taken, released as a no-op."""
        lock = Lock(self._redis, _name(key), timeout=self.lease_s, blocking=False, thread_local=False)
        try:
            taken = await lock.acquire()
        except RedisError as exc:
            self.reach.failed(exc)
            self.acted_alone += 1
            return Lease(None, self.reach)
        self.reach.answered()
        return Lease(lock, self.reach) if taken else None

    async def wait(self, key: str, ready: Callable[[], Awaitable[T | None]]) -> T | None:
        """Look for the holder's answer with ``ready`` until it comes or the holder's lease is gone (its call failed,
        or it died): then None, and the caller calls itself. Never longer than one lease."""
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self.lease_s
        name = _name(key)
        for pause in _pauses():
            await asyncio.sleep(pause)
            found = await ready()
            if found is not None:
                self.waited += 1
                return found
            try:
                held = await self._redis.exists(name)
            except RedisError as exc:
                self.reach.failed(exc)
                return None
            if not held or loop.time() >= give_up_at:
                return await ready()  # the answer may have landed just before the lease was released
        return None  # pragma: no cover  (_pauses never ends)


class Lease:
    def __init__(self, lock: Lock | None, reach: Reachability) -> None:
        self._lock = lock  # None: taken without Redis (it did not answer), so nothing to give back
        self._reach = reach

    async def release(self) -> None:
        if self._lock is None:
            return
        try:
            await self._lock.release()
        except LockError:
            pass  # the lease ran out first (a call slower than lease_s): another instance may hold it now
        except RedisError as exc:
            self._reach.failed(exc)  # the lease ends by itself within lease_s


def _pauses() -> Iterator[float]:
    yield from POLL_S
    while True:
        yield POLL_S[-1]


def _name(key: str) -> str:
    # Cache keys are hashes already; hashing again keeps every lease name one short, fixed shape.
    return PREFIX + "flight:" + hashlib.sha256(key.encode()).hexdigest()[:32]
