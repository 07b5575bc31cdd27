"""The cross-request answer cache: the only module that imports aiocache.

Two backends behind one small facade: ``memory://`` (in process, bounded in bytes and entries, least recently used
goes, expired entries reclaimed: ``graph.data.lru.ExpiringLRU``) and ``redis://host:port/db`` (shared by
instances, TTL kept by Redis). What goes to Redis is sealed (``graph.fleet.seal``: an HMAC over the store's name,
the key and the value) and opened when read back: a value that does not open (forged, moved from another key, sealed
with another key) is a miss, counted as a ``forged`` lookup. The cache is an optimisation, never a
dependency: a backend error or a slow Redis (operations time out at ~100 ms) is a miss, logged at most once
a minute, and the service answers from the gateway meanwhile.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar
from urllib.parse import urlsplit

import orjson
from aiocache import RedisCache
from aiocache.serializers import StringSerializer

from graph.data.lru import ExpiringLRU
from graph.fleet.seal import Seal

log = logging.getLogger("graph.data.cache")

REDIS_TIMEOUT_S = 0.1
DEGRADED_LOG_INTERVAL_S = 60.0
# What one memory entry costs beside its value and key: the dict slot, the (expiry, value, size) tuple, the expiry
# float and the expiry heap's row (the key is counted apart, by sys.getsizeof). Measured with tracemalloc, 10,000
# entries in one store (tests/test_memory.py measures it again): 209 bytes each, rounded up here.
ENTRY_OVERHEAD = 256


@dataclass(frozen=True, slots=True)
class Entry:
    """A cached gateway outcome: the verified node, or a business error's fields."""

    kind: Literal["ok", "error"]
    payload: dict[str, Any]
    stored_at: float  # epoch seconds, so ages are comparable between instances

    def dumps(self) -> str:
        return orjson.dumps({"k": self.kind, "p": self.payload, "t": self.stored_at}).decode()

    @classmethod
    def loads(cls, text: str | bytes) -> Entry | None:
        try:
            raw = orjson.loads(text)
            kind, payload, stored_at = raw["k"], raw["p"], float(raw["t"])
        except (ValueError, TypeError, KeyError):
            return None  # written by another version, or damaged: a miss, never an error
        if kind not in ("ok", "error") or not isinstance(payload, dict):
            return None
        return cls(kind, payload, stored_at)


T = TypeVar("T")


class Codec(Protocol[T]):
    """How one cache's values become text for Redis (and back: None for what cannot be read)."""

    def dumps(self, value: T) -> str: ...

    def loads(self, raw: str | bytes) -> T | None: ...


class EntryCodec:
    def dumps(self, value: Entry) -> str:
        return value.dumps()

    def loads(self, raw: str | bytes) -> Entry | None:
        return Entry.loads(raw)


ENTRIES = EntryCodec()


class TextCodec:
    """Values that are text already (APQ documents): stored as they are."""

    def dumps(self, value: str) -> str:
        return value

    def loads(self, raw: str | bytes) -> str | None:
        if isinstance(raw, bytes):
            try:
                return raw.decode()
            except UnicodeDecodeError:
                return None
        return raw


TEXT = TextCodec()


class AnswerCache(Generic[T]):
    """get/set/ping that never raise; backend trouble is logged (rate-limited) and reported by ``healthy``.

    ``lookups`` (hit, miss, error, forged) and ``errors`` (get, set, ping) are plain counts, exported as metrics.
    Values go to Redis as text through ``codec``; in memory they are kept as text too unless ``size`` is given: then
    they are immutable, hold few objects, and ``size`` says what one costs in bytes (a hit parses nothing). A value
    larger than ``max_item_bytes`` (its text, or ``size``) is not kept, in either backend; ``oversized`` counts them.
    With ``seal``, values go to Redis sealed for ``store`` (the cache's name) and their key, and what does not open
    is a ``forged`` miss; the memory backend never seals (nothing leaves the process).
    """

    def __init__(
        self,
        backend: Any,
        name: str,
        codec: Codec[T],
        *,
        size: Callable[[T], int] | None = None,
        max_item_bytes: int | None = None,
        seal: Seal | None = None,
        store: str = "gateway",
    ) -> None:
        self.backend = backend
        self.name = name
        self.codec = codec
        self._memory: ExpiringLRU[str, Any] | None = backend if isinstance(backend, ExpiringLRU) else None
        self._size = size if self._memory is not None else None
        self._seal = seal if self._memory is None else None
        self.store = store
        self.max_item_bytes = max_item_bytes
        self.oversized = 0
        self.healthy = True
        self.lookups: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self._last_warning = float("-inf")

    async def get(self, key: str, *, usable: Callable[[T], bool] | None = None, counted: bool = True) -> T | None:
        """The value under ``key``, or None. ``usable`` tells a kept value that is past its use (an answer kept for
        stale-if-error) from a hit: it is returned but counted ``expired``; ``counted=False`` counts nothing (a
        look for another instance's answer, repeated while it waits)."""
        if self._memory is not None:
            raw = self._memory.get(key)  # a dict operation: nothing to fail, nothing to await
        else:
            try:
                raw = await self.backend.get(key)
            except Exception as exc:
                self.lookups["error"] += 1
                self._degraded("get", exc)
                return None
            self._recovered()
            if raw is not None and self._seal is not None:
                raw = self._seal.open_bytes(f"{self.store}:{key}", raw)  # bytes: the serializer has no encoding
                if raw is None:
                    self.lookups["forged"] += 1
                    self._seal.refused(self.store)
                    return None
        value: T | None = raw if raw is None or self._size is not None else self.codec.loads(raw)
        if counted:
            self.lookups["miss" if value is None else "hit" if usable is None or usable(value) else "expired"] += 1
        return value

    def entries(self) -> int | None:
        """How many entries the memory cache holds, expired ones reclaimed first (None for Redis: shared, and
        counting it costs a round trip). The metrics scrape calls it: an idle process gives back expired entries."""
        if self._memory is None:
            return None
        self._memory.purge()
        return len(self._memory)

    async def set(self, key: str, value: T, ttl_s: float) -> None:
        if ttl_s <= 0:
            return
        if self._memory is not None:
            # Text unless sized objects: ten thousand parsed answers are a million objects the garbage collector
            # walks on every full collection (tens of ms each, on the request path); ten thousand strings are ten
            # thousand untracked objects. A read costs one orjson parse (~10 µs), and no caller can mutate it.
            kept: Any = value if self._size is not None else self.codec.dumps(value)
            size = self._size(value) if self._size is not None else sys.getsizeof(kept)
            if self.max_item_bytes is not None and size > self.max_item_bytes:
                self.oversized += 1
                return
            if not self._memory.put(key, kept, size + sys.getsizeof(key) + ENTRY_OVERHEAD, ttl_s):
                self.oversized += 1
            return
        text = self.codec.dumps(value)
        if self.max_item_bytes is not None and len(text) > self.max_item_bytes:
            self.oversized += 1
            return
        if self._seal is not None:
            text = self._seal.seal(f"{self.store}:{key}", text)
        try:
            await self.backend.set(key, text, ttl=_ttl(ttl_s))
        except Exception as exc:
            self._degraded("set", exc)
            return
        self._recovered()

    async def ping(self) -> bool:
        if self.name == "memory":
            return True
        try:
            await self.backend.raw("ping")
        except Exception as exc:
            self._degraded("ping", exc)
            return False
        self._recovered()
        return True

    async def close(self) -> None:
        if self.name == "redis":
            # aiocache's close() calls redis-py's deprecated close(); aclose() is the current spelling.
            await self.backend.client.aclose()

    def _degraded(self, what: str, exc: BaseException) -> None:
        self.errors[what] += 1
        self.healthy = False
        now = time.monotonic()
        if now - self._last_warning >= DEGRADED_LOG_INTERVAL_S:
            self._last_warning = now
            log.warning(
                "cache backend unavailable; answering from the gateway",
                extra={"backend": self.name, "operation": what, "error": type(exc).__name__},
            )

    def _recovered(self) -> None:
        if not self.healthy:
            self.healthy = True
            log.info("cache backend recovered", extra={"backend": self.name})


def _ttl(seconds: float) -> int | float:
    # aiocache sends an int as SETEX seconds and a float as PSETEX milliseconds.
    return int(seconds) if float(seconds).is_integer() else float(seconds)


def open_cache(url: str, *, max_bytes: int, max_entries: int, seal: Seal | None = None) -> AnswerCache[Entry]:
    """The cache of gateway answers: ``Entry`` values, kept as text (sealed in Redis with ``seal``)."""
    return open_store(url, ENTRIES, max_bytes=max_bytes, max_entries=max_entries, seal=seal, store="gateway")


def open_store(
    url: str,
    codec: Codec[T],
    *,
    max_bytes: int,
    max_entries: int,
    size: Callable[[T], int] | None = None,
    max_item_bytes: int | None = None,
    seal: Seal | None = None,
    store: str = "gateway",
) -> AnswerCache[T]:
    """``memory://`` or ``redis://[:password@]host[:port][/db]`` (validated by the settings already).

    ``max_bytes`` and ``max_entries`` bound the memory backend (Redis is bounded by its ``maxmemory``: docs/caching.md);
    ``size`` keeps objects in memory instead of text; ``max_item_bytes`` bounds one value in both backends;
    ``seal`` authenticates what goes to Redis, for ``store`` (the cache's name: part of what is sealed)."""
    parts = urlsplit(url)
    if parts.scheme == "memory":
        memory: ExpiringLRU[str, Any] = ExpiringLRU(max_bytes, max_entries)
        return AnswerCache(memory, "memory", codec, size=size, max_item_bytes=max_item_bytes, store=store)
    db = (parts.path or "/0").lstrip("/") or "0"
    backend = RedisCache(
        # Bytes back (no encoding): a value that is not UTF-8 is then a miss read by the codec or the seal, not an
        # exception from the backend that would count as Redis failing (and flip readiness).
        serializer=StringSerializer(encoding=None),
        endpoint=parts.hostname or "127.0.0.1",
        port=parts.port or 6379,
        db=int(db),
        password=parts.password,
        namespace="alipay-miniapp-graph:v1",  # aiocache joins namespace and key with ":"
        timeout=REDIS_TIMEOUT_S,
        create_connection_timeout=REDIS_TIMEOUT_S,
    )
    return AnswerCache(backend, "redis", codec, max_item_bytes=max_item_bytes, seal=seal, store=store)
