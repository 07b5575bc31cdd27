"""Whole GraphQL responses, reused: the key, the typed entry, and whether an answer may be kept.

The key is the operation as the edge parsed it (document with insignificant white space, commas and comments
dropped, operation name, variables with sorted keys) plus who asks (the caller's API key fingerprint and a hash of
the merchant token): tenants never share. It is computed from the same ``GraphQLRequest`` the executor runs, so
what is stored under a key is always the answer to that key's request. Only responses whose every answer may be
reused are stored, for the shortest lifetime left among them; a response carrying any error other than a
(cacheable) Alipay business error is not.
"""

from __future__ import annotations

import hashlib
import math

import orjson

from graph.data.cache import AnswerCache
from graph.data.freshness import Freshness
from graph.data.responses import CachedResponse
from graph.http.access import Caller
from graph.http.document import normalise
from graph.http.execute import Executed
from graph.http.request import GraphQLRequest
from graph.observability.request_state import RequestState

KEY_PREFIX = "response:"
CACHEABLE_ERRORS = frozenset({"ALIPAY_BUSINESS_ERROR"})


async def current(responses: AnswerCache[CachedResponse], key: str, now: float) -> CachedResponse | None:
    """The stored response for ``key`` while it is current. Redis keeps its own TTL, but a value written back after
    its time (a replay by whoever can write to that Redis: sealed, so genuine, yet old) must not serve: the entry's
    own expiry decides (counted ``expired``, not ``hit``)."""
    hit = await responses.get(key, usable=lambda entry: entry.expires > now)
    return hit if hit is not None and hit.expires > now else None


def response_key(request: GraphQLRequest, caller: Caller) -> str:
    """What the response to ``request`` is stored under (``request.query`` is set: persisted queries resolved)."""
    variables = orjson.dumps(request.variables or {}, option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256(normalise(request.query or "").encode())
    digest.update(b"\x00" + (request.operation_name or "").encode() + b"\x00" + variables)
    digest.update(b"\x00" + (caller.key or "-").encode() + b"\x00")
    if caller.app_auth_token:
        digest.update(hashlib.sha256(caller.app_auth_token.encode()).digest())
    return KEY_PREFIX + digest.hexdigest()


def entry_for(
    executed: Executed,
    freshness: Freshness,
    state: RequestState | None,
    *,
    default_ttl_s: float,
    now: float,
) -> tuple[CachedResponse, float] | None:
    """What to keep of an executed answer, and for how long; None when any part of it may not be reused."""
    if not freshness.cacheable or any(code not in CACHEABLE_ERRORS for code in executed.codes):
        return None
    ttl = default_ttl_s if math.isinf(freshness.ttl_left) else freshness.ttl_left
    if ttl <= 0:
        return None
    body = orjson.dumps({name: value for name, value in executed.result.items() if name != "extensions"})
    name = state.operation if state is not None and state.operation is not None else "anonymous"
    outcome = state.outcome if state is not None and state.outcome is not None else "ok"
    # Stored as born when its oldest answer was, so a hit reports the age of the data, not of the entry.
    born = now - freshness.age_s
    return CachedResponse(body, bool(freshness.ages), born, now + ttl, name, outcome, executed.codes), ttl
