"""What one HTTP request learned on its way, for its log line: a context variable every task it starts inherits.

The gateway client and the cache are process-wide and know nothing of requests; a call they make on behalf
of a request runs in a task created from that request's context, so counting into ``current()`` counts for
the request that caused the call. A caller that joins another's call in flight counts nothing.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(slots=True)
class RequestState:
    request_id: str
    operation: str | None = None  # the GraphQL operation's name, or "anonymous"
    outcome: str | None = None  # ok | partial | error for an operation; the edge decides for anything else
    gateway_calls: int = 0  # attempts, retries included
    cache_hits: int = 0  # gateway answers read from the cache
    response_cache: str | None = None  # "hit" when the whole response was replayed, "miss" when it was looked up
    persisted_query: str | None = None  # APQ / safelist: "hit", "miss", "registered" or "refused"


_current: contextvars.ContextVar[RequestState | None] = contextvars.ContextVar("graph_request", default=None)


def current() -> RequestState | None:
    return _current.get()


def begin(state: RequestState) -> contextvars.Token[RequestState | None]:
    return _current.set(state)


def end(token: contextvars.Token[RequestState | None]) -> None:
    _current.reset(token)
