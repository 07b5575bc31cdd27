"""The circuit breaker: opens after consecutive failures, refuses without a call, half-opens with one probe;
through the service, answers keep coming from the cache while it is open."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from graph.gateway.breaker import CircuitBreaker, State
from graph.gateway.errors import CircuitOpen
from graph.sandbox import Fault, SandboxGateway

STATUS = "query($v: String!) { miniAppVersion(appVersion: $v) { appVersion status } }"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def state_of(breaker: CircuitBreaker) -> State:
    return breaker.state  # read through a call: mypy would narrow the attribute after the first assert


def test_opens_after_consecutive_failures_only(caplog: pytest.LogCaptureFixture) -> None:
    breaker = CircuitBreaker("http://gw.test", failures=3, reset_s=10, clock=Clock())
    for outcome in (False, False, True, False, False):  # a success in between starts the count again
        breaker.before_call()
        breaker.after_call(outcome, probe=False)
    assert state_of(breaker) is State.CLOSED
    with caplog.at_level(logging.WARNING, logger="graph.gateway.breaker"):
        breaker.before_call()
        breaker.after_call(False, probe=False)
    assert state_of(breaker) is State.OPEN
    assert caplog.records[0].gateway == "http://gw.test"  # type: ignore[attr-defined]
    with pytest.raises(CircuitOpen, match="3 consecutive failures"):
        breaker.before_call()


def test_half_open_lets_one_probe_through() -> None:
    clock = Clock()
    breaker = CircuitBreaker("gw", failures=1, reset_s=10, clock=clock)
    breaker.after_call(False, probe=breaker.before_call())
    clock.now += 9.9
    with pytest.raises(CircuitOpen, match=r"next try in 0\.1 s"):
        breaker.before_call()
    clock.now += 0.1
    assert breaker.before_call() is True  # the probe
    assert state_of(breaker) is State.HALF_OPEN
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # everyone else waits for the probe's outcome
    breaker.after_call(False, probe=True)  # the probe failed: open again, for a whole pause
    assert state_of(breaker) is State.OPEN
    clock.now += 5
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    clock.now += 5
    assert breaker.before_call() is True
    breaker.after_call(True, probe=True)
    assert state_of(breaker) is State.CLOSED
    assert breaker.before_call() is False


def test_a_cancelled_probe_frees_the_slot() -> None:
    clock = Clock()
    breaker = CircuitBreaker("gw", failures=1, reset_s=1, clock=clock)
    breaker.after_call(False, probe=breaker.before_call())
    clock.now += 1
    assert breaker.before_call() is True
    breaker.after_call(None, probe=True)
    assert breaker.before_call() is True  # the next call probes instead


def test_zero_failures_never_opens() -> None:
    breaker = CircuitBreaker("gw", failures=0)
    for _ in range(100):
        breaker.after_call(False, probe=breaker.before_call())
    assert state_of(breaker) is State.CLOSED


async def ask(http: httpx.AsyncClient, version: str, **headers: str) -> dict[str, Any]:
    response = await http.post("/graphql", json={"query": STATUS, "variables": {"v": version}}, headers=headers)
    body: dict[str, Any] = response.json()
    return body


def code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors")
    return errors[0]["extensions"]["code"] if errors else None


async def test_open_circuit_answers_from_the_cache_or_at_once(
    start_app: Callable[..., str], sandbox: SandboxGateway
) -> None:
    url = start_app(breaker_failures=3, breaker_reset_s=0.5, retries=2)
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        assert code(await ask(http, "0.0.1")) is None  # cached from now on
        sandbox.reset()
        sandbox.fail_next(Fault.HTTP_502, times=100)
        assert code(await ask(http, "0.0.2")) == "ALIPAY_UNAVAILABLE"
        assert sandbox.received == 3  # one call, two retries: three failures, the circuit opens

        metrics = (await http.get("/metrics")).text
        assert 'graph_circuit_breaker_state{graph_circuit_breaker_state="open"} 1.0' in metrics
        refused = await ask(http, "0.1.0")
        assert code(refused) == "ALIPAY_UNAVAILABLE"
        assert "calls paused" in refused["errors"][0]["message"]
        cached = await ask(http, "0.0.1")
        assert cached["data"]["miniAppVersion"]["status"] == "RELEASE"
        # Even a no-cache request gets the cached answer while the gateway is left alone (its age says so).
        forced = await ask(http, "0.0.1", **{"Cache-Control": "no-cache"})
        assert forced["data"]["miniAppVersion"]["status"] == "RELEASE"
        assert "cacheAge" in forced["extensions"]
        assert sandbox.received == 3  # none of these reached the gateway

        await asyncio.sleep(0.55)
        sandbox.reset()  # the gateway recovered
        assert code(await ask(http, "0.1.0")) is None  # the half-open probe, answered: closed again
        assert code(await ask(http, "1.0.0")) is None
        assert sandbox.received == 2
        metrics = (await http.get("/metrics")).text
        assert 'graph_circuit_breaker_state{graph_circuit_breaker_state="closed"} 1.0' in metrics


async def test_business_and_signature_errors_do_not_open_it(
    start_app: Callable[..., str], sandbox: SandboxGateway
) -> None:
    # The gateway answered each time: a caller asking for versions that do not exist, or a bad key rotation,
    # must not cut everyone else off (and a signature problem must keep saying so, not ALIPAY_UNAVAILABLE).
    url = start_app(breaker_failures=2, cache_error_ttl_s=0)
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        for _ in range(4):
            assert code(await ask(http, "9.9.9")) == "ALIPAY_BUSINESS_ERROR"
        sandbox.fail_next(Fault.BAD_SIGNATURE, times=4)
        for _ in range(4):
            assert code(await ask(http, "0.0.2")) == "ALIPAY_BAD_SIGNATURE"
        assert code(await ask(http, "0.0.2")) is None
    assert sandbox.received == 9
