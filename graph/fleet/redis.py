"""The one Redis connection pool a process shares with the rest of its fleet, beside the answer cache.

The cache (``graph.data.cache``) reaches Redis through aiocache; what instances coordinate on (shared rate limits,
the upstream budget, single-flight across instances, live-poll leases) needs scripts, ``SET NX`` and pub/sub, so it
goes through this plain redis-py client, opened once from ``GRAPH_CACHE_URL``. With ``memory://`` there is no
fleet: ``open_redis`` gives None and every user keeps its state in process.

Redis is never a dependency: every user falls back to what the process can do alone when a call fails, and
``Reachability`` says so once (a WARNING when Redis goes away, an INFO when it is back), not once per request.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from redis.asyncio import Redis

log = logging.getLogger("graph.fleet")

# Every key the fleet shares starts with this (the answer cache's own keys use the same prefix through aiocache).
PREFIX = "alipay-miniapp-graph:v1:fleet:"
TIMEOUT_S = 0.1  # a slow Redis is an absent one: the request goes on without it


def open_redis(url: str) -> Redis | None:
    """A client for ``redis://[:password@]host[:port][/db]`` (validated by the settings already); None for memory."""
    parts = urlsplit(url)
    if parts.scheme != "redis":
        return None
    db = (parts.path or "/0").lstrip("/") or "0"
    return Redis(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 6379,
        db=int(db),
        password=parts.password,
        socket_timeout=TIMEOUT_S,
        socket_connect_timeout=TIMEOUT_S,
    )


class Reachability:
    """Whether Redis answered last time, for one user of it: logs each change once, with what falls back."""

    def __init__(self, what: str) -> None:
        self.what = what  # e.g. "rate limits": what falls back to the process's own state
        self.reachable = True

    def failed(self, exc: BaseException) -> None:
        if self.reachable:
            self.reachable = False
            log.warning(
                "redis unavailable: %s are this instance's own until it is back",
                self.what,
                extra={"error": type(exc).__name__},
            )

    def answered(self) -> None:
        if not self.reachable:
            self.reachable = True
            log.info("redis reachable again: %s are shared by the fleet", self.what)
