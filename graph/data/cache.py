"""The cross-request answer cache: the only module that imports aiocache.

Two backends behind one small facade: ``memory://`` (in process, bounded, least recently used goes) and
``redis://host:port/db`` (shared by instances, TTL kept by Redis). The cache is an optimisation, never a
dependency: a backend error or a slow Redis (operations time out at ~100 ms) is a miss, logged at most once
a minute, and the service answers from the gateway meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar
from urllib.parse import urlsplit

import orjson
from aiocache import RedisCache, SimpleMemoryCache
from aiocache.serializers import NullSerializer, StringSerializer

log = logging.getLogger("graph.data.cache")

REDIS_TIMEOUT_S = 0.1
DEGRADED_LOG_INTERVAL_S = 60.0


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


class BoundedMemoryCache(SimpleMemoryCache):  # type: ignore[misc]  # aiocache ships no type hints
    """aiocache's memory backend, which never evicts but by TTL, with a bound: least recently used goes.

    Python dicts keep insertion order, so "recently used" is "moved to the end" and the oldest is the first key.
    Expiry is checked when an entry is read instead of by aiocache's one event-loop timer per key: at the bound
    that is 10,000 fewer timers, and an evicted key leaves no cancelled timer behind in the loop's heap.
    """

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.monotonic, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_entries = max_entries
        self._clock = clock

    async def _get(self, key: str, encoding: str = "utf-8", _conn: Any = None) -> Any:
        return self.lookup(key)

    def lookup(self, key: str) -> Any:
        """The value, or None when absent or expired: a plain call, without aiocache's wrappers around it."""
        stored = self._cache.pop(key, None)
        if stored is None:
            return None
        expires_at, value = stored
        if expires_at is not None and expires_at <= self._clock():
            return None  # already popped: an expired entry is simply gone
        self._cache[key] = stored
        return value

    async def _set(self, key: str, value: Any, ttl: Any = None, _cas_token: Any = None, _conn: Any = None) -> Any:
        self.store(key, value, ttl)
        return True

    def store(self, key: str, value: Any, ttl: float | None) -> None:
        self._cache.pop(key, None)  # re-inserted at the end: the most recently used
        self._cache[key] = (self._clock() + ttl if ttl else None, value)
        while len(self._cache) > self.max_entries:
            del self._cache[next(iter(self._cache))]

    def __len__(self) -> int:
        return len(self._cache)


class AnswerCache(Generic[T]):
    """get/set/ping that never raise; backend trouble is logged (rate-limited) and reported by ``healthy``.

    ``lookups`` (hit, miss, error) and ``errors`` (get, set, ping) are plain counts, exported as metrics. Values go
    to Redis as text through ``codec``; in memory they are kept as text too unless ``keep_objects`` says they are
    immutable and hold few objects (then a hit costs no parse at all).
    """

    def __init__(self, backend: Any, name: str, codec: Codec[T], *, keep_objects: bool = False) -> None:
        self.backend = backend
        self.name = name
        self.codec = codec
        self._memory = backend if isinstance(backend, BoundedMemoryCache) else None
        self._as_objects = keep_objects and self._memory is not None
        self.healthy = True
        self.lookups: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self._last_warning = float("-inf")

    async def get(self, key: str) -> T | None:
        if self._memory is not None:
            raw = self._memory.lookup(key)  # a dict operation: nothing to fail, nothing to await
        else:
            try:
                raw = await self.backend.get(key)
            except Exception as exc:
                self.lookups["error"] += 1
                self._degraded("get", exc)
                return None
            self._recovered()
        value: T | None = raw if raw is None or self._as_objects else self.codec.loads(raw)
        self.lookups["miss" if value is None else "hit"] += 1
        return value

    def entries(self) -> int | None:
        """How many entries the memory cache holds (None for Redis: shared, and counting it costs a round trip)."""
        return len(self.backend) if isinstance(self.backend, BoundedMemoryCache) else None

    async def set(self, key: str, value: T, ttl_s: float) -> None:
        if ttl_s <= 0:
            return
        if self._as_objects and self._memory is not None:
            self._memory.store(key, value, ttl_s)
            return
        # Text in both backends. In memory that matters as much as in Redis: ten thousand parsed answers are a
        # million objects the garbage collector walks on every full collection (tens of ms each, on the request
        # path); ten thousand strings are ten thousand untracked objects. A read costs one orjson parse (~10 µs),
        # and no caller can mutate what is cached.
        text = self.codec.dumps(value)
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
        else:
            await self.backend.close()

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


def open_cache(url: str, *, max_entries: int) -> AnswerCache[Entry]:
    """The cache of gateway answers and APQ documents: ``Entry`` values."""
    return open_store(url, ENTRIES, max_entries=max_entries)


def open_store(url: str, codec: Codec[T], *, max_entries: int, keep_objects: bool = False) -> AnswerCache[T]:
    """``memory://`` or ``redis://[:password@]host[:port][/db]`` (validated by the settings already)."""
    parts = urlsplit(url)
    if parts.scheme == "memory":
        # timeout=0: aiocache otherwise wraps each dict lookup in asyncio.wait_for (~33 µs against ~5 µs).
        backend = BoundedMemoryCache(max_entries, serializer=NullSerializer(), timeout=0)
        return AnswerCache(backend, "memory", codec, keep_objects=keep_objects)
    db = (parts.path or "/0").lstrip("/") or "0"
    backend = RedisCache(
        serializer=StringSerializer(),
        endpoint=parts.hostname or "127.0.0.1",
        port=parts.port or 6379,
        db=int(db),
        password=parts.password,
        namespace="alipay-miniapp-graph:v1",  # aiocache joins namespace and key with ":"
        timeout=REDIS_TIMEOUT_S,
        create_connection_timeout=REDIS_TIMEOUT_S,
    )
    return AnswerCache(backend, "redis", codec)
