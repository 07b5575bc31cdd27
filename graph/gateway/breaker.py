"""A circuit breaker for one gateway URL: stop calling a gateway that keeps failing, probe it now and then.

    closed ──(``failures`` consecutive failed attempts)──▶ open ──(``reset_s`` later)──▶ half-open
      ▲                                                    ▲                               │
      └──────────────(the probe gets an answer)────────────┼───────────────────────────────┤
                                                           └─────(the probe fails too)─────┘

While open, calls fail at once with ``CircuitOpen`` and never reach the network; half-open lets exactly one
probe through and refuses the rest until it ends. What counts as a failure is the caller's decision
(``AlipayClient`` counts what makes the gateway unavailable: timeouts, refused or reset connections, HTTP 5xx,
unreadable bodies, busy and call-limited answers); any answer the gateway gives (a business error, even one whose
signature fails) proves it is up and closes the circuit.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable

from graph.gateway.errors import CircuitOpen

log = logging.getLogger(__name__)


class State(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failures: int = 5,
        reset_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.name = name  # the gateway URL, for log lines (it holds no secret: parameters travel per request)
        self._threshold = failures  # 0: never opens
        self._reset_s = reset_s
        self._clock = clock
        self._on_change = on_change  # told the new state's name on every change (the service's metrics)
        self._state = State.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> State:
        return self._state

    @state.setter
    def state(self, state: State) -> None:
        if state is not self._state:
            self._state = state
            if self._on_change is not None:
                self._on_change(state.value)

    def before_call(self) -> bool:
        """Let the call through (True when it is the half-open probe), or raise ``CircuitOpen``."""
        if self.state is State.CLOSED:
            return False
        waited = self._clock() - self._opened_at
        if self.state is State.OPEN and waited >= self._reset_s:
            self.state = State.HALF_OPEN
        if self.state is State.HALF_OPEN and not self._probing:
            self._probing = True  # this call is the probe; the others are refused until its outcome
            return True
        retry_in = max(0.0, self._reset_s - waited)
        raise CircuitOpen(
            f"gateway unavailable: {self._failures} consecutive failures, calls paused (next try in {retry_in:.1f} s)"
        )

    def after_call(self, ok: bool | None, *, probe: bool) -> None:
        """Record a call's outcome: True the gateway answered, False it failed, None neither (cancelled)."""
        if probe:
            self._probing = False
        if ok is None:
            return  # a cancelled probe proved nothing: the next call probes instead
        if ok:
            if self.state is not State.CLOSED:
                log.info("gateway circuit closed", extra={"gateway": self.name})
            self.state, self._failures = State.CLOSED, 0
            return
        self._failures += 1
        if probe or (self.state is State.CLOSED and self._threshold and self._failures >= self._threshold):
            if self.state is State.CLOSED:
                log.warning(
                    "gateway circuit opened: answering ALIPAY_UNAVAILABLE without calling it",
                    extra={"gateway": self.name, "failures": self._failures, "reset_s": self._reset_s},
                )
            self.state, self._opened_at = State.OPEN, self._clock()
