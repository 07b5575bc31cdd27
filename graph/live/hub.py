"""One watch per (merchant token, version, client) in a process: one poll every ``GRAPH_LIVE_POLL_S``, however many
subscribe to it.

A watch lives while it has subscribers. Its task polls through the data path with ``fresh=True`` (a refresh, not
a read: through the breaker and the budget, and the fresh answer is written to the cache), turns the outcome into a
``State`` and, when the fingerprint changed, wakes its subscribers. A subscriber is an ``asyncio.Event`` (one per
subscription, shared by the keys it watches): woken, it reads the states it was not sent yet. With a fleet
(``graph.live.fleet``) only the instance holding a key's lease polls it; the others receive its states.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from graph.data.source import VersionKey, VersionSource, cache_key
from graph.live.state import State, state_of

log = logging.getLogger("graph.live")


class Fleet(Protocol):
    """What a hub asks of the instances it shares its keys with (``graph.live.fleet.RedisFleet``)."""

    tick_s: float  # how often a watch must come back to keep (or take over) its lease

    async def hold(self, ck: str) -> bool:
        """Take or keep the lease on ``ck``: True when this instance is the one to poll it."""

    async def release(self, ck: str) -> None: ...

    async def publish(self, ck: str, state: State) -> None: ...

    def listen(self, deliver: Callable[[str, State], None]) -> None:
        """Hand each state the fleet publishes (this instance's too) to ``deliver``."""

    async def aclose(self) -> None: ...


class Watch:
    __slots__ = ("ck", "key", "next_poll", "state", "subscribers")

    def __init__(self, key: VersionKey, ck: str, next_poll: float) -> None:
        self.key = key
        self.ck = ck  # the key's cache key: the token hashed, what the fleet names it by
        self.subscribers: set[asyncio.Event] = set()
        self.state: State | None = None
        self.next_poll = next_poll


class LiveHub:
    def __init__(
        self,
        source: VersionSource,
        *,
        poll_s: float,
        fleet: Fleet | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.poll_s = poll_s
        self.fleet = fleet
        self._clock = clock
        self._watches: dict[VersionKey, Watch] = {}
        self._by_ck: dict[str, Watch] = {}
        self._tasks: dict[VersionKey, asyncio.Task[None]] = {}  # each watch's poller

    def join(self, keys: Iterable[VersionKey], subscriber: asyncio.Event) -> None:
        for key in keys:
            watch = self._watches.get(key)
            if watch is None:
                ck = cache_key(self.source.client.app_id, key)
                watch = self._watches[key] = self._by_ck[ck] = Watch(key, ck, self._clock() + self.poll_s)
                self._tasks[key] = asyncio.get_running_loop().create_task(self._run(watch), name="live-watch")
            watch.subscribers.add(subscriber)
        if self.fleet is not None:
            self.fleet.listen(self.received)  # from the first subscriber on (once)

    def leave(self, keys: Iterable[VersionKey], subscriber: asyncio.Event) -> None:
        # A key no longer watched (the hub closed first, at shutdown) has nothing to leave.
        for watch in filter(None, map(self._watches.get, keys)):
            watch.subscribers.discard(subscriber)
            if not watch.subscribers:
                self._drop(watch)

    def state(self, key: VersionKey) -> State | None:
        """The last state of a key joined (None until its first is known)."""
        return self._watches[key].state

    async def current(self, key: VersionKey) -> State:
        """A joined key's state now: its watch's last one, or (none yet) the data path's answer (the cache first),
        which becomes the baseline the first poll is compared with."""
        watch = self._watches[key]
        if watch.state is None:
            fetched = state_of(await self.source.fetch(key))
            watch.state = watch.state or fetched  # a poll may have been quicker
        return watch.state

    def received(self, ck: str, state: State) -> None:
        """A state another instance polled (the fleet's messages): as if polled here."""
        watch = self._by_ck.get(ck)
        if watch is not None:
            watch.next_poll = self._clock() + self.poll_s  # whoever takes the lease over polls from there on
            self._set(watch, state)

    async def aclose(self) -> None:
        tasks = list(self._tasks.values())
        for watch in list(self._watches.values()):
            self._drop(watch)
        await asyncio.gather(*tasks, return_exceptions=True)  # their leases given back
        if self.fleet is not None:
            await self.fleet.aclose()

    def _drop(self, watch: Watch) -> None:
        del self._watches[watch.key], self._by_ck[watch.ck]
        self._tasks.pop(watch.key).cancel()

    async def _run(self, watch: Watch) -> None:
        fleet = self.fleet
        try:
            while True:
                wait = max(0.0, watch.next_poll - self._clock())
                if fleet is None:
                    await asyncio.sleep(wait)
                    await self._poll(watch)
                    continue
                await asyncio.sleep(min(wait, fleet.tick_s))
                if await fleet.hold(watch.ck) and self._clock() >= watch.next_poll:
                    state = await self._poll(watch)
                    if state is not None:  # pragma: no branch  (None only after a defect)
                        await fleet.publish(watch.ck, state)
        finally:
            if fleet is not None:
                # The lease is given back at once (another instance's subscribers need not wait for it to expire).
                with contextlib.suppress(Exception):
                    await asyncio.shield(fleet.release(watch.ck))

    async def _poll(self, watch: Watch) -> State | None:
        watch.next_poll = self._clock() + self.poll_s
        try:
            state = state_of(await self.source.fetch(watch.key, poll=True))
        # The data path answers every gateway failure as an outcome; what is left is a defect, which must not end
        # the watch (its subscribers keep the last state). Nothing the sandbox can script reaches it.
        except Exception:  # pragma: no cover
            log.exception("live poll failed", extra={"app_version": watch.key.app_version})
            return None
        self._set(watch, state)
        return state

    @staticmethod
    def _set(watch: Watch, state: State) -> None:
        if watch.state is not None and watch.state.fingerprint == state.fingerprint:
            return
        watch.state = state
        for subscriber in watch.subscribers:
            subscriber.set()
