"""Single-flight: concurrent identical calls share one execution, within a process.

A cache in front of an upstream stampedes without it: 32 concurrent misses make 32 calls. The caller that
arrives first starts the call; later callers with the same key await the same task until it finishes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._calls: dict[K, asyncio.Task[V]] = {}
        self.joined = 0  # callers that shared another's call (for metrics and tests of our own)

    @property
    def in_flight(self) -> int:
        return len(self._calls)

    async def do(self, key: K, call: Callable[[], Awaitable[V]]) -> V:
        task = self._calls.get(key)
        if task is None:
            task = asyncio.ensure_future(call())
            self._calls[key] = task
            task.add_done_callback(lambda _: self._calls.pop(key, None))
        else:
            self.joined += 1
        # shield: one caller giving up (a client disconnects) must not cancel the call the others wait for.
        return await asyncio.shield(task)
