"""A least-recently-used map bounded by the bytes of what it holds, not by its number of entries.

Memos of request parts (documents, query strings) take what callers send: bounded by entries, a few thousand
64 KiB documents are hundreds of MB. Here each entry costs what its ``size`` says, and the oldest go first once
the total passes ``max_bytes``; a value larger than a quarter of the bound is never kept.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


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
        if size > self.max_bytes // 4:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self.size -= old[1]
        self._items[key] = (value, size)
        self.size += size
        while self.size > self.max_bytes:
            _, (_, dropped) = self._pop_oldest()
            self.size -= dropped

    def _pop_oldest(self) -> tuple[K, tuple[V, int]]:
        key = next(iter(self._items))
        return key, self._items.pop(key)

    def __len__(self) -> int:
        return len(self._items)
