"""One poll per watched key across the fleet: a lease per key in Redis, and the polled states published to all.

Each instance that watches a key comes back to it every ``tick_s`` and runs one script: take the lease when nobody
holds it (``SET NX PX``), renew it when this instance holds it. Only the holder polls; it publishes each state on
one channel, and every instance (the holder too) hands the states of the keys it watches to its subscribers. An
instance that dies stops renewing: its leases expire after ``LEASE_S`` and another watcher takes each one at its
next tick, so a key's polls move within ``LEASE_S + tick_s`` (12 s; SPEC: 15). An instance that stops watching a
key gives its lease back at once.

Redis is never a dependency: when it does not answer, each instance polls the keys it watches itself (its
subscribers then get events from its own polls), and ``Reachability`` says so once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from redis.asyncio import ConnectionPool, Redis
from redis.exceptions import RedisError

from graph.fleet.redis import PREFIX, Reachability
from graph.fleet.seal import Seal
from graph.live.state import State

log = logging.getLogger("graph.live")
LEASE_S = 9.0
TICK_S = 3.0
CHANNEL = PREFIX + "live:states"
_RECONNECT_S = 1.0

# Take the lease if free, renew it if ours: 1 when this instance holds it now, else 0.
_HOLD = """
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
elseif holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisFleet:
    def __init__(self, redis: Redis, seal: Seal, *, lease_s: float = LEASE_S, tick_s: float = TICK_S) -> None:
        self.redis = redis
        self.seal = seal
        # This instance, as lease holders are named: where to look when asking which instance polls a key.
        self.me = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_ms = int(lease_s * 1000)
        self.tick_s = tick_s
        self.reachability = Reachability("live polls")
        self._hold = redis.register_script(_HOLD)
        self._release = redis.register_script(_RELEASE)
        self._listener: asyncio.Task[None] | None = None
        # Subscribing blocks on a read: its own connection, without the shared client's short socket timeout.
        pool = redis.connection_pool
        kwargs = {**pool.connection_kwargs, "socket_timeout": None}
        self._subscriber = Redis(connection_pool=ConnectionPool(connection_class=pool.connection_class, **kwargs))

    async def hold(self, ck: str) -> bool:
        try:
            held = await self._hold(keys=[_lease(ck)], args=[self.me, self.lease_ms])
        except (RedisError, OSError) as exc:
            self.reachability.failed(exc)
            return True  # alone: this instance polls what its subscribers watch
        self.reachability.answered()
        return bool(held)

    async def release(self, ck: str) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._release(keys=[_lease(ck)], args=[self.me])

    async def publish(self, ck: str, state: State) -> None:
        try:
            await self.redis.publish(CHANNEL, encode(self.seal, ck, state))
        except (RedisError, OSError) as exc:
            self.reachability.failed(exc)

    def listen(self, deliver: Callable[[str, State], None]) -> None:
        """Hand every state published by the fleet to ``deliver`` (from now until ``aclose``)."""
        if self._listener is None:
            self._listener = asyncio.get_running_loop().create_task(self._listen(deliver), name="live-fleet")

    async def _listen(self, deliver: Callable[[str, State], None]) -> None:
        while True:
            pubsub = self._subscriber.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                async for message in pubsub.listen():  # pragma: no branch  (ends only on an error)
                    decoded = decode(self.seal, message.get("data"))
                    if decoded is not None:
                        deliver(*decoded)
            except (RedisError, OSError) as exc:
                self.reachability.failed(exc)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py 5 leaves it unannotated
            await asyncio.sleep(_RECONNECT_S)

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._subscriber.aclose(close_connection_pool=True)  # its pool is its own


def _lease(ck: str) -> str:
    return f"{PREFIX}live:lease:{ck}"


# The one place states are written for and read from the fleet: sealed (graph/fleet/seal.py, the HMAC over what
# instances share, for this channel), so a state nobody in the fleet wrote is dropped, counted and reported.
def encode(seal: Seal, ck: str, state: State) -> str:
    text = orjson.dumps({"k": ck, "v": state.value, "s": state.stale, "t": state.stored_at}).decode()
    return seal.seal(f"live:{CHANNEL}", text)


def decode(seal: Seal, raw: Any) -> tuple[str, State] | None:
    opened = seal.open_bytes(f"live:{CHANNEL}", raw) if isinstance(raw, bytes) else None
    if opened is None:
        seal.refused("live")
        return None
    raw = opened
    try:
        message = orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError):
        log.warning("live: an unreadable message on the fleet's channel was dropped")
        return None
    if not isinstance(message, dict) or not isinstance(message.get("k"), str) or not isinstance(message.get("v"), dict):
        log.warning("live: a malformed message on the fleet's channel was dropped")
        return None
    stored_at = message.get("t")
    state = State.of(
        message["v"],
        stale=message.get("s") is True,
        stored_at=float(stored_at) if isinstance(stored_at, int | float) else None,
    )
    return message["k"], state
