"""The v2 gateway client: parameters → sign → POST → verify the raw node → map the code → retry.

One ``AlipayClient`` per process: it owns a pooled ``httpx.AsyncClient`` (a new one per call costs
~30-40 ms of CPU loading the CA bundle). Every attempt is signed afresh because the timestamp is part of
what is signed. Nothing here logs parameters, signatures or keys; the official SDK logs the whole signed
URL, ``app_auth_token`` included.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from graph.gateway import signing
from graph.gateway.breaker import CircuitBreaker
from graph.gateway.errors import (
    BusinessError,
    GatewayError,
    GatewayProtocolError,
    GatewayResponseError,
    GatewayTransportError,
    SignatureError,
    response_error,
)
from graph.gateway.response import ERROR_NODE, find_answer

log = logging.getLogger(__name__)
SECRET_PARAMS = ("sign", "app_auth_token")


class RedactGatewayUrls(logging.Filter):
    """httpx logs every request URL (at INFO); a gateway URL carries ``sign`` and ``app_auth_token``.

    Installed on the ``httpx`` logger when this module loads, so the values are masked whatever level or handlers
    the process configures (``graph.logs`` also keeps httpx at WARNING; this holds when someone lowers it).
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

VERSION_DETAIL_METHOD = "alipay.open.mini.version.detail.query"
SUCCESS_CODE = "10000"

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter: attempt n waits uniform(0, min(cap, base * 2**n))."""

    base_s: float = 0.1
    cap_s: float = 2.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap_s, self.base_s * 2**attempt))  # noqa: S311  (jitter, not secrecy)


@dataclass(frozen=True, slots=True)
class Credentials:
    app_id: str
    private_key: rsa.RSAPrivateKey
    alipay_public_key: rsa.RSAPublicKey
    sign_type: signing.SignType = signing.SignType.RSA2

    def __repr__(self) -> str:  # keys stay out of every repr, traceback and log line
        return f"Credentials(app_id={self.app_id!r}, sign_type={self.sign_type.value})"


class AlipayClient:
    """Signed calls to the Alipay open-platform v2 gateway."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        gateway_url: str,
        timeout_s: float = 5.0,
        retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff: Backoff = Backoff(),
        sleep: Sleep = asyncio.sleep,
        clock: Clock = _utc_now,
        max_connections: int = 16,
        deadline_s: float | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self._credentials = credentials
        self._url = gateway_url
        self._retries = retries
        self._deadline_s = deadline_s
        # One breaker per gateway URL: this client's (a process builds one client per URL it calls).
        self.breaker = breaker or CircuitBreaker(gateway_url, failures=0)
        self._backoff = backoff
        self._sleep = sleep
        self._clock = clock
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            headers={"Accept": "application/json"},
        )

    @property
    def app_id(self) -> str:
        return self._credentials.app_id

    def keys_usable(self) -> bool:
        """The private key signs and its own public half verifies the result (a readiness probe, ~1 ms)."""
        creds = self._credentials
        probe = b"readiness"
        signature = signing.sign(probe, creds.private_key, creds.sign_type)
        return signing.verify(probe, signature, creds.private_key.public_key(), creds.sign_type)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def version_detail(
        self, app_version: str, bundle_id: str, app_auth_token: str | None = None
    ) -> dict[str, Any]:
        """The verified ``alipay.open.mini.version.detail.query`` node for one version on one client."""
        biz = {"app_version": app_version, "bundle_id": bundle_id}
        return await self.call(VERSION_DETAIL_METHOD, biz, app_auth_token=app_auth_token)

    async def call(
        self, method: str, biz_content: Mapping[str, Any], *, app_auth_token: str | None = None
    ) -> dict[str, Any]:
        """Call ``method``; retry what the gateway calls transient; return the verified success node."""
        biz_text = json.dumps(biz_content, ensure_ascii=False, separators=(",", ":"))
        loop = asyncio.get_running_loop()
        # The deadline covers every attempt and every backoff wait: a call never outlives it, however it retries.
        give_up_at = None if self._deadline_s is None else loop.time() + self._deadline_s
        attempt = 0
        while True:
            try:
                return await self._guarded_attempt(method, biz_text, app_auth_token, give_up_at)
            except GatewayError as exc:
                if not exc.retryable or attempt >= self._retries:
                    raise
                delay = self._backoff.delay(attempt)
                if give_up_at is not None and loop.time() + delay >= give_up_at:
                    raise  # no time left for another attempt
                attempt += 1
                log.info(
                    "gateway attempt failed, retrying",
                    extra={
                        "method": method,
                        "attempt": attempt,
                        "error": type(exc).__name__,
                        "delay_s": round(delay, 3),
                    },
                )
                await self._sleep(delay)

    async def _guarded_attempt(
        self, method: str, biz_text: str, app_auth_token: str | None, give_up_at: float | None
    ) -> dict[str, Any]:
        """One attempt through the circuit breaker, cut short at the deadline."""
        probe = self.breaker.before_call()
        ok: bool | None = None  # stays None when the attempt is cancelled: that says nothing about the gateway
        try:
            async with asyncio.timeout_at(give_up_at):
                node = await self._attempt(method, biz_text, app_auth_token)
            ok = True
            return node
        except TimeoutError:
            ok = False
            raise GatewayTransportError(
                "gateway gave no answer within the operation deadline (GRAPH_OPERATION_DEADLINE_S)"
            ) from None
        except GatewayError as exc:
            # Any answer (a refusal, even one whose signature fails) proves the gateway is up; only what makes it
            # unavailable (timeouts, refused or reset connections, 5xx, unreadable bodies, busy) opens the circuit.
            ok = isinstance(exc, BusinessError | SignatureError)
            raise
        finally:
            self.breaker.after_call(ok, probe=probe)

    def signed_params(self, method: str, biz_text: str, app_auth_token: str | None) -> dict[str, str]:
        """The common parameters plus ``biz_content`` and ``sign``, as the gateway checks them."""
        creds = self._credentials
        params = {
            "app_id": creds.app_id,
            "method": method,
            "format": "json",
            "charset": "utf-8",
            "sign_type": creds.sign_type.value,
            "timestamp": signing.gateway_timestamp(self._clock()),
            "version": "1.0",
            "biz_content": biz_text,
        }
        if app_auth_token:
            params["app_auth_token"] = app_auth_token
        params["sign"] = signing.sign_params(params, creds.private_key, creds.sign_type)
        return params

    async def _attempt(self, method: str, biz_text: str, app_auth_token: str | None) -> dict[str, Any]:
        params = self.signed_params(method, biz_text, app_auth_token)
        # Common params ride in the query string and biz_content in the form body, as the SDKs send them.
        form = {"biz_content": params.pop("biz_content")}
        try:
            response = await self._http.post(self._url, params=params, data=form)
        except httpx.TimeoutException:
            raise GatewayTransportError("gateway timed out") from None
        except httpx.TransportError as exc:
            raise GatewayTransportError(f"gateway unreachable ({type(exc).__name__})") from None
        if response.status_code >= 500:
            raise GatewayTransportError(f"gateway answered HTTP {response.status_code}")
        if response.status_code != 200:
            raise GatewayProtocolError(f"gateway answered HTTP {response.status_code}")
        try:
            body = response.content.decode("utf-8")
        except UnicodeDecodeError:
            raise GatewayProtocolError("gateway body is not UTF-8") from None
        return self._verified_node(method, body)

    def _verified_node(self, method: str, body: str) -> dict[str, Any]:
        answer = find_answer(body, method)
        node = answer.node.value
        if not isinstance(node, dict):
            raise GatewayProtocolError("gateway response node is not an object")
        code = _text(node.get("code"))
        success = code == SUCCESS_CODE and answer.node_name != ERROR_NODE
        # Java's checkResponseSign: always verify a success; verify a failure only when it carries a sign.
        if answer.sign is None:
            if success:
                raise SignatureError("gateway answer is unsigned; refusing to use it")
        elif not signing.verify(
            answer.node.raw.encode("utf-8"),
            answer.sign,
            self._credentials.alipay_public_key,
            self._credentials.sign_type,
        ):
            raise SignatureError(
                "gateway answer's signature does not verify: check that ALIPAY_PUBLIC_KEY is Alipay's public key "
                "(from the open platform console), not your app's own public key"
            )
        if success:
            return node
        raise _error_from(node, signed=answer.sign is not None)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None if value is None else str(value)


def _error_from(node: Mapping[str, Any], *, signed: bool) -> GatewayResponseError:
    code = _text(node.get("code"))
    if not code:
        raise GatewayProtocolError("gateway response node has no code")
    return response_error(
        code, _text(node.get("msg")) or "", _text(node.get("sub_code")), _text(node.get("sub_msg")), signed=signed
    )
