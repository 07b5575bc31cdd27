"""What the v2 and v3 clients share: the pooled HTTP client, the retry loop, the readiness probe.

Everything above the gateway (services, loaders, readiness) holds a ``GatewayClient`` and calls ``call`` with
a method name (``graph.gateway.methods``) and its arguments; which protocol answers is a start-up setting.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from graph.gateway import signing
from graph.gateway.attempts import Attempt, AttemptObserver, NoObserver, outcome_of
from graph.gateway.breaker import CircuitBreaker
from graph.gateway.credentials import Credentials
from graph.gateway.errors import BudgetSpent, BusinessError, GatewayError, GatewayTransportError, SignatureError
from graph.gateway.methods import VERSION_DETAIL
from graph.gateway.transport import GatewayTransport

log = logging.getLogger("graph.gateway.client")
SECRET_PARAMS = ("sign", "app_auth_token")


class RedactGatewayUrls(logging.Filter):
    """httpx logs every request URL (at INFO); a v2 gateway URL carries ``sign`` and ``app_auth_token``.

    Installed on the ``httpx`` logger when this module loads, so the values are masked whatever level or handlers
    the process configures (``graph.observability.logs`` keeps httpx at WARNING too; this holds when someone lowers it).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(arg, httpx.URL) for arg in record.args):
            record.args = tuple(_redacted(arg) if isinstance(arg, httpx.URL) else arg for arg in record.args)
        return True


def _redacted(url: httpx.URL) -> httpx.URL:
    params = url.params
    for name in SECRET_PARAMS:
        if name in params:
            params = params.set(name, "***")
    return url.copy_with(params=params)


logging.getLogger("httpx").addFilter(RedactGatewayUrls())

Sleep = Callable[[float], Awaitable[None]]
# Asked before each attempt: 0 to go ahead, else the seconds until one may (the upstream budget, graph.data.source).
Admit = Callable[[], Awaitable[float]]
Clock = Callable[[], datetime]
T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter: attempt n waits uniform(0, min(cap, base * 2**n))."""

    base_s: float = 0.1
    cap_s: float = 2.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap_s, self.base_s * 2**attempt))  # noqa: S311  (jitter, not secrecy)


DEFAULT_BACKOFF = Backoff()


class GatewayClient:
    """Signed calls to Alipay: one instance per process, owning a pooled ``httpx.AsyncClient``."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        gateway_url: str,
        timeout_s: float = 5.0,
        retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff: Backoff = DEFAULT_BACKOFF,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = utc_now,
        max_connections: int = 16,
        observer: AttemptObserver | None = None,
        deadline_s: float | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self._credentials = credentials
        self._observer: AttemptObserver = observer or NoObserver()
        self._deadline_s = deadline_s
        # One breaker per gateway URL: this client's (a process builds one client per URL it calls).
        self.breaker = breaker or CircuitBreaker(gateway_url, failures=0)
        self._url = gateway_url
        self._retries = retries
        self._backoff = backoff
        self._sleep = sleep
        self._clock = clock
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        # Tests and the demo inject their own transports; graph.gateway.transport says why this default.
        self._http = httpx.AsyncClient(
            transport=transport or GatewayTransport(limits=limits),
            timeout=httpx.Timeout(timeout_s),
            limits=limits,
            headers={"Accept": "application/json"},
        )

    @property
    def app_id(self) -> str:
        return self._credentials.app_id

    def keys_usable(self) -> bool:
        """The private key signs and its own public half verifies the result (a readiness probe, ~1 ms)."""
        creds = self._credentials
        probe = b"readiness"
        try:
            signature = signing.sign(probe, creds.private_key, creds.sign_type)
        except ValueError:  # e.g. a key too short for the digest: it loads, but signs nothing
            return False
        return signing.verify(probe, signature, creds.private_key.public_key(), creds.sign_type)

    @property
    def closed(self) -> bool:
        return self._http.is_closed

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(
        self, method: str, params: Mapping[str, str], *, app_auth_token: str | None = None, admit: Admit | None = None
    ) -> dict[str, Any]:
        """Call the read ``method`` with ``params``; retry what the gateway calls transient; return the verified
        answer's fields (v2: the success node, ``code`` and ``msg`` included; v3: the bare fields). ``admit`` is
        asked before every attempt, retries included (each is a call Alipay counts)."""
        raise NotImplementedError

    async def version_detail(
        self, app_version: str, bundle_id: str, app_auth_token: str | None = None
    ) -> dict[str, Any]:
        """The verified answer of ``alipay.open.mini.version.detail.query`` for one version on one client."""
        return await self.call(
            VERSION_DETAIL, {"app_version": app_version, "bundle_id": bundle_id}, app_auth_token=app_auth_token
        )

    async def _retrying(self, method: str, attempt: Callable[[], Awaitable[T]], admit: Admit | None = None) -> T:
        """Run ``attempt`` (which signs afresh each time) until it succeeds or fails for good.

        Each attempt is reported to the observer (metrics, a span) and logged: what was called and how it
        went, never what was sent. The deadline covers every attempt and every backoff wait: a call never
        outlives it, however it retries. The circuit breaker may refuse an attempt before it is made
        (``CircuitOpen``: not an attempt, so neither observed nor retried), and so may ``admit``, the upstream
        budget (``BudgetSpent``: nothing sent, the breaker told nothing)."""
        loop = asyncio.get_running_loop()
        give_up_at = None if self._deadline_s is None else loop.time() + self._deadline_s
        tries = 0
        while True:
            record = Attempt(method, tries + 1)
            error: GatewayError | None = None
            probe = self.breaker.before_call()
            answered: bool | None = None  # stays None if the attempt is cancelled: that says nothing of the gateway
            try:
                if admit is not None and (wait := await admit()) > 0:
                    raise BudgetSpent(wait)
                with self._observer.attempt(record):
                    started = time.perf_counter()
                    try:
                        result = await _within(give_up_at, attempt)
                    except GatewayError as exc:
                        error = exc
                    record.duration_s = time.perf_counter() - started
                    record.outcome = outcome_of(error)
                # Any answer (a refusal, even one whose signature fails) proves the gateway is up; only what makes
                # it unavailable (timeouts, refused or reset connections, 5xx, unreadable bodies, busy) counts.
                answered = error is None or isinstance(error, BusinessError | SignatureError)
            finally:
                self.breaker.after_call(answered, probe=probe)
            retrying = error is not None and error.retryable and tries < self._retries
            delay = self._backoff.delay(tries) if retrying else None
            if delay is not None and give_up_at is not None and loop.time() + delay >= give_up_at:
                delay = None  # no time left for another attempt
            log.info(
                "gateway attempt",
                extra={
                    "method": method,
                    "attempt": record.number,
                    "outcome": record.outcome,
                    "duration_ms": round(record.duration_s * 1000, 2),
                    **({"retry_in_s": round(delay, 3)} if delay is not None else {}),
                },
            )
            if error is None:
                return result
            if delay is None:
                raise error
            tries += 1
            await self._sleep(delay)


async def _within(give_up_at: float | None, attempt: Callable[[], Awaitable[T]]) -> T:
    """``attempt``, cut short at the deadline (an event-loop time) as a transport failure."""
    try:
        async with asyncio.timeout_at(give_up_at):
            return await attempt()
    except TimeoutError:
        raise GatewayTransportError(
            "gateway gave no answer within the operation deadline (GRAPH_OPERATION_DEADLINE_S)"
        ) from None
