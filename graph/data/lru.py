"""Least-recently-used maps bounded by the bytes of what they hold, not by their number of entries.

Memos and caches of what callers send or cause (documents, query strings, answers) grow with them: bounded by
entries, a few thousand 64 KiB documents or 1 MB answers are gigabytes. Here each entry costs what its ``size``
says (the caller measures it), the least recently used go first once the total passes ``max_bytes``, and a value
larger than a quarter of the bound is never kept (one entry never flushes the rest).

``SizedLRU`` is a plain memo (no expiry). ``ExpiringLRU`` is the in-process cache backend: each entry may also
expire, and expired entries are reclaimed in expiry order by every read and write (at most ``SWEEP`` of them per
call, so no call pays for a backlog at once) and wholly by ``purge`` (the metrics scrape calls it), not only when
they are read: one heap of (expiry, key) rows instead of a timer per key.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
SWEEP = 32  # expired entries reclaimed at most per read or write: more than one write adds, so they never pile up


class SizedLRU(Generic[K, V]):
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._items: dict[K, tuple[V, int]] = {}  # dict order = recency: the first key is the least recent

    def get(self, key: K) -> V | None:
        item = self._items.pop(key, None)
        if item is None:
            return None
        self._items[key] = item
        return item[0]

    def put(self, key: K, value: V, size: int) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.size -= old[1]
        if size > self.max_bytes // 4:
            return
        self._items[key] = (value, size)
        self.size += size
        while self.size > self.max_bytes:
            self.size -= self._items.pop(next(iter(self._items)))[1]  # the least recently used

    def __len__(self) -> int:
        return len(self._items)


class ExpiringLRU(Generic[K, V]):
    """Bounded by ``max_bytes`` (what the caller says each entry costs) and ``max_entries``; entries expire."""

    def __init__(self, max_bytes: int, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.size = 0
        self._clock = clock
        self._items: dict[K, tuple[float, V, int]] = {}  # (expires at, value, size); dict order = recency
        # Rows of (expires at, sequence, key), earliest first. A row whose key was since replaced or evicted is
        # stale: skipped when it comes up, and the heap is rebuilt once stale rows outnumber live entries.
        self._expiry: list[tuple[float, int, K]] = []
        self._sequence = itertools.count()

    def get(self, key: K) -> V | None:
        now = self._clock()
        self._sweep(now, SWEEP)
        item = self._items.pop(key, None)
        if item is None:
            return None
        if item[0] <= now:  # expired and not swept yet: gone now
            self.size -= item[2]
            return None
        self._items[key] = item  # re-inserted at the end: the most recently used
        return item[1]

    def put(self, key: K, value: V, size: int, ttl_s: float | None = None) -> bool:
        """Keep ``value`` for ``ttl_s`` seconds (None: until evicted); False when it is too large to keep."""
        now = self._clock()
        self._sweep(now, SWEEP)
        old = self._items.pop(key, None)
        if old is not None:
            self.size -= old[2]
        if size > self.max_bytes // 4:
            return False
        expires = now + ttl_s if ttl_s else math.inf
        self._items[key] = (expires, value, size)
        self.size += size
        if expires != math.inf:
            heapq.heappush(self._expiry, (expires, next(self._sequence), key))
        while self.size > self.max_bytes or len(self._items) > self.max_entries:
            oldest = next(iter(self._items))
            self.size -= self._items.pop(oldest)[2]
        if len(self._expiry) > 2 * len(self._items) + 64:
            self._expiry = [
                (item[0], next(self._sequence), k) for k, item in self._items.items() if item[0] != math.inf
            ]
            heapq.heapify(self._expiry)
        return True

    def purge(self) -> None:
        """Reclaim every expired entry now."""
        self._sweep(self._clock(), len(self._expiry))

    def _sweep(self, now: float, limit: int) -> None:
        heap = self._expiry
        for _ in range(limit):
            if not heap or heap[0][0] > now:
                return
            expires, _, key = heapq.heappop(heap)
            item = self._items.get(key)
            if item is not None and item[0] == expires:  # the row of the entry held now, not of one replaced
                del self._items[key]
                self.size -= item[2]

    def __len__(self) -> int:
        return len(self._items)
