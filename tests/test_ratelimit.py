"""Per-caller rate limit: token buckets (burst up to the limit, refill limit/60 a second), bounded memory, 429."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from graph.fleet.buckets import TokenBuckets
from tests.conftest import API_KEY, OTHER_API_KEY

QUERY = {"query": "{ __typename }"}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_caller_bursts_to_the_limit_then_refills_at_the_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(60, clock=clock)  # one a second
    assert [buckets.take("a") for _ in range(60)] == [0.0] * 60
    assert buckets.take("a") == 1.0  # empty: one token is a second away
    assert buckets.take("b") == 0.0  # another caller has its own bucket
    clock.now += 0.5
    assert buckets.take("a") == 0.5
    clock.now += 0.5
    assert buckets.take("a") == 0.0
    clock.now += 3600
    assert [buckets.take("a") for _ in range(61)].count(0.0) == 60  # refilled, never beyond the limit


def test_memory_is_bounded_least_recently_seen_go() -> None:
    buckets = TokenBuckets(1, max_callers=3, clock=Clock())
    for caller in ("a", "b", "c"):
        buckets.take(caller)
    buckets.take("a")  # seen again: now "b" is the oldest
    buckets.take("d")
    assert len(buckets) == 3
    assert buckets.take("b") == 0.0  # forgotten, so a full bucket again
    assert buckets.take("a") > 0  # remembered: still empty


async def test_429_with_retry_after_per_key(start_app: Callable[..., str]) -> None:
    url = start_app(allow_anonymous=False, api_keys=frozenset({API_KEY, OTHER_API_KEY}), rate_limit_per_min=3)
    async with httpx.AsyncClient(base_url=url) as http:
        mine = {"Authorization": f"Bearer {API_KEY}"}
        assert [(await http.post("/graphql", json=QUERY, headers=mine)).status_code for _ in range(3)] == [200] * 3
        limited = await http.post("/graphql", json=QUERY, headers=mine)
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "20"  # a token every 20 s at 3 a minute
        assert limited.headers["content-type"] == "application/json"
        assert limited.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert "GRAPH_RATE_LIMIT_PER_MIN" in limited.json()["errors"][0]["message"]
        assert API_KEY not in limited.text
        other = await http.post("/graphql", json=QUERY, headers={"Authorization": f"Bearer {OTHER_API_KEY}"})
        assert other.status_code == 200  # each key has its own budget
        assert (await http.get("/healthz")).status_code == 200  # probes are never limited
        # Unknown keys are refused before they are counted: they cannot spend a real key's budget.
        assert (await http.post("/graphql", json=QUERY, headers={"Authorization": "Bearer nope"})).status_code == 401


async def test_anonymous_callers_are_limited_by_address(start_app: Callable[..., str]) -> None:
    url = start_app(rate_limit_per_min=2)
    async with httpx.AsyncClient(base_url=url) as http:
        statuses = [(await http.post("/graphql", json=QUERY)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


async def test_zero_turns_the_limit_off(start_app: Callable[..., str]) -> None:
    url = start_app(rate_limit_per_min=0)
    async with httpx.AsyncClient(base_url=url) as http:
        statuses = {(await http.post("/graphql", json=QUERY)).status_code for _ in range(30)}
    assert statuses == {200}


def _from(address: str) -> httpx.AsyncHTTPTransport:
    """A client on another loopback address: the service sees a different client address."""
    return httpx.AsyncHTTPTransport(local_address=address)


async def test_wrong_keys_are_limited_per_address_and_a_real_key_elsewhere_is_untouched(
    start_app: Callable[..., str],
) -> None:
    url = start_app(allow_anonymous=False, api_keys=frozenset({API_KEY}), auth_failures_per_min=5)
    wrong, right = {"Authorization": "Bearer guess"}, {"Authorization": f"Bearer {API_KEY}"}
    async with (
        httpx.AsyncClient(base_url=url, transport=_from("127.0.0.2")) as attacker,
        httpx.AsyncClient(base_url=url, transport=_from("127.0.0.3")) as user,
    ):
        statuses = [(await attacker.post("/graphql", json=QUERY, headers=wrong)).status_code for _ in range(8)]
        assert statuses == [401] * 5 + [429] * 3
        limited = await attacker.post("/graphql", json=QUERY, headers=right)
        assert limited.status_code == 429  # guessing from there goes no faster, even with a right guess
        assert limited.headers["retry-after"] == "12"  # a token every 12 s at 5 a minute
        assert "GRAPH_AUTH_FAILURES_PER_MIN" in limited.json()["errors"][0]["message"]
        # The key itself is not locked: its owner, elsewhere, is served, and is not rate limited by the failures.
        assert [(await user.post("/graphql", json=QUERY, headers=right)).status_code for _ in range(10)] == [200] * 10


async def test_the_failure_limit_can_be_turned_off(start_app: Callable[..., str]) -> None:
    url = start_app(allow_anonymous=False, api_keys=frozenset({API_KEY}), auth_failures_per_min=0)
    async with httpx.AsyncClient(base_url=url) as http:
        wrong = {"Authorization": "Bearer guess"}
        statuses = {(await http.post("/graphql", json=QUERY, headers=wrong)).status_code for _ in range(40)}
    assert statuses == {401}
