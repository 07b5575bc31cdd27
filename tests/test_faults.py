"""The fault matrix: every way the gateway (or the network to it) fails, through the whole service over HTTP.

Each case: the error code the caller gets, how many attempts reached the gateway (counted where they arrive:
the sandbox's or the flaky link's counter; for a refused connection, which arrives nowhere, the client's attempt
log lines), and the service healthy afterwards (the next query answers, /readyz is 200).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from graph.sandbox import Fault, SandboxGateway
from tests.flaky_link import FlakyLink, Mode

STATUS = "query($v: String!) { miniAppVersion(appVersion: $v) { appVersion status } }"


@dataclass(frozen=True)
class FaultCase:
    name: str
    code: str | None  # None: the data comes through after all
    attempts: int
    faults: tuple[tuple[Fault, int], ...] = ()  # queued on the sandbox: (fault, times)
    link: Mode | None = None  # reach the sandbox through a misbehaving link in this mode
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: tuple[float, float] = (0.0, 5.0)  # how long the caller waits: at least, at most


FAULTS = [
    FaultCase("timeout", "ALIPAY_UNAVAILABLE", 3, ((Fault.slow(0.8), 3),), settings={"timeout_s": 0.3}),
    FaultCase("connection refused", "ALIPAY_UNAVAILABLE", 3, link="refuse"),
    FaultCase("reset mid-body", "ALIPAY_UNAVAILABLE", 3, link="reset"),
    FaultCase("HTTP 502", "ALIPAY_UNAVAILABLE", 3, ((Fault.HTTP_502, 3),)),
    FaultCase("HTML body", "ALIPAY_UNAVAILABLE", 1, ((Fault.GARBAGE_BODY, 3),)),
    FaultCase("truncated JSON", "ALIPAY_UNAVAILABLE", 1, ((Fault.TRUNCATED_JSON, 3),)),
    FaultCase("JSON nested 100,000 deep", "ALIPAY_UNAVAILABLE", 1, link="nested"),
    FaultCase("bad signature", "ALIPAY_BAD_SIGNATURE", 1, ((Fault.BAD_SIGNATURE, 3),)),
    FaultCase("tampered in transit", "ALIPAY_BAD_SIGNATURE", 1, ((Fault.TAMPERED, 3),)),
    FaultCase("signed with another key", "ALIPAY_BAD_SIGNATURE", 1, ((Fault.WRONG_KEY, 3),)),
    FaultCase("duplicated node", "ALIPAY_BAD_SIGNATURE", 1, ((Fault.DUPLICATE_NODE, 3),)),
    FaultCase("unsigned success", "ALIPAY_BAD_SIGNATURE", 1, ((Fault.UNSIGNED_SUCCESS, 3),)),
    FaultCase("unsigned error", "ALIPAY_BUSINESS_ERROR", 1, ((Fault.UNSIGNED_ERROR, 3),)),
    FaultCase("business error", "ALIPAY_BUSINESS_ERROR", 1, ((Fault.BUSINESS_ERROR, 3),)),
    FaultCase("busy then success", None, 3, ((Fault.BUSY, 2),)),
    FaultCase("busy throughout", "ALIPAY_UNAVAILABLE", 3, ((Fault.BUSY, 3),)),
    FaultCase("system error throughout", "ALIPAY_UNAVAILABLE", 3, ((Fault.SYSTEM_ERROR, 3),)),
    FaultCase("rate limited then success", None, 2, ((Fault.CALL_LIMITED, 1),)),
    FaultCase("rate limited throughout", "ALIPAY_UNAVAILABLE", 3, ((Fault.CALL_LIMITED, 3),)),
    FaultCase(
        "slow beyond the deadline",
        "ALIPAY_UNAVAILABLE",
        2,  # 0.5 s timed out, backoff <= 0.1 s, the second attempt (which could last till 1.1 s) cut at 0.8 s
        ((Fault.slow(1.2), 3),),
        settings={"timeout_s": 0.5, "operation_deadline_s": 0.8},
        seconds=(0.75, 1.4),  # without the deadline: three attempts, over 1.5 s
    ),
]


@pytest.fixture
def link(gateway_url: str) -> Iterator[FlakyLink]:
    flaky = FlakyLink(int(gateway_url.rsplit(":", 1)[1].split("/")[0]))
    yield flaky
    flaky.close()


async def ask(http: httpx.AsyncClient, version: str = "0.0.1") -> dict[str, Any]:
    response = await http.post("/graphql", json={"query": STATUS, "variables": {"v": version}})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


async def settle(sandbox: SandboxGateway) -> None:
    """Wait for answers the service gave up on (slow faults): they must not land in the next test's call log."""
    for _ in range(300):
        if sandbox.in_flight == 0:
            return
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("case", FAULTS, ids=[case.name for case in FAULTS])
async def test_fault_matrix(
    case: FaultCase,
    start_app: Callable[..., str],
    sandbox: SandboxGateway,
    link: FlakyLink,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for fault, times in case.faults:
        sandbox.fail_next(fault, times=times, app_version="0.0.1")
    if case.link is not None:
        link.set_mode(case.link)
    url = start_app(**case.settings, **({"gateway_url": link.url} if case.link else {}))
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        with caplog.at_level(logging.INFO, logger="graph.gateway.client"):
            started = time.monotonic()
            body = await ask(http)
            waited = time.monotonic() - started
        # The caller's wait ends at the operation's deadline; the client's last attempt, cut at the same moment
        # by its own, is logged a moment later.
        for _ in range(100):
            logged = [r for r in caplog.records if r.getMessage() == "gateway attempt"]
            if len(logged) >= case.attempts:
                break
            await asyncio.sleep(0.01)

        if case.code is None:
            assert "errors" not in body
            assert body["data"]["miniAppVersion"] == {"appVersion": "0.0.1", "status": "RELEASE"}
        else:
            assert body["data"] == {"miniAppVersion": None}
            assert [e["extensions"]["code"] for e in body["errors"]] == [case.code]
        arrived = link.requests if case.link in ("reset", "nested") else sandbox.received
        assert (arrived if case.link != "refuse" else len(logged)) == case.attempts
        assert len(logged) == case.attempts  # the client's own account agrees with what arrived
        assert case.seconds[0] <= waited < case.seconds[1]

        # Healthy afterwards: the network heals, the next query answers, readiness holds.
        await settle(sandbox)
        if case.link is not None:
            link.set_mode("forward")
        after = await ask(http, "0.0.2")
        assert "errors" not in after, after
        assert after["data"]["miniAppVersion"]["appVersion"] == "0.0.2"
        assert (await http.get("/readyz")).status_code == 200
