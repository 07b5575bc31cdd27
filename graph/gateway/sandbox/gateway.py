"""A stand-in for Alipay's v2 gateway that is as strict as the real one and answers byte for byte like it.

It checks requests in Alipay's order (parameters, app, format, timestamp in Beijing time, signature,
method, merchant token, biz_content), signs every answer it can with the Alipay key (an app it does not
know gets an unsigned ``error_response``), serves seeded versions, replays scripted faults, and keeps a
log of every call so tests can assert retries, batching and caching as observable behaviour.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from graph.gateway.sandbox.checks import (
    Refusal,
    check_protocol,
    find_version,
    merge_params,
    parse_biz,
    requested,
    sign_type_of,
)
from graph.gateway.sandbox.credentials import DemoCredentials
from graph.gateway.sandbox.faults import Fault, render
from graph.gateway.sandbox.seed import KNOWN_BUNDLE_IDS, SEED_VERSIONS
from graph.gateway.sandbox.wire import ERROR_NODE, METHOD, METHOD_NODE, Wire, signed, success_node
from graph.gateway.signing import SignType


def token_digest(token: str) -> str:
    """How the call log names a merchant token: enough to tell tokens apart, useless to anyone who reads it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Call:
    """One request the gateway received, refused ones included. Never holds the sign or a raw token."""

    app_id: str | None
    method: str | None
    sign_type: str | None
    timestamp: str | None
    app_version: str | None  # None when blank or biz_content is unreadable
    bundle_id: str | None  # the default applied when biz_content names none
    app_auth_token_digest: str | None  # token_digest(app_auth_token), None when none was sent
    outcome: str  # "ok", "business_error", a refusal ("invalid-signature", ...), or a Fault name ("BUSY", ...)
    code: str | None  # of the answer sent; None when the body carried no readable code
    sub_code: str | None

    @property
    def has_app_auth_token(self) -> bool:
        return self.app_auth_token_digest is not None


@dataclass
class _Queued:
    fault: Fault
    remaining: int
    app_version: str | None


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SandboxGateway:
    """POST /gateway.do, as ``alipay.open.mini.version.detail.query`` answers it."""

    def __init__(
        self,
        *,
        alipay_private_key: rsa.RSAPrivateKey,
        apps: Mapping[str, rsa.RSAPublicKey],
        auth_tokens: Collection[str] = (),
        versions: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
        tenants: Mapping[str, Mapping[tuple[str, str], Mapping[str, Any]]] | None = None,
        clock: Callable[[], datetime] = _utc_now,
        timestamp_tolerance_s: float = 900,
    ) -> None:
        self._alipay_key = alipay_private_key
        self._apps = dict(apps)
        # ISV mode: each merchant token may have versions of its own (a token with none sees the shared ones).
        self._tenants = dict(tenants or {})
        self._auth_tokens = frozenset(auth_tokens) | set(self._tenants)
        self._versions = SEED_VERSIONS if versions is None else versions
        # Clients beyond the five exist upstream; any a test seeds is one the gateway knows.
        seeded = [self._versions, *self._tenants.values()]
        self._bundle_ids = frozenset(KNOWN_BUNDLE_IDS) | {bundle_id for vs in seeded for _, bundle_id in vs}
        self._clock = clock
        self._tolerance_s = timestamp_tolerance_s
        self._faults: list[_Queued] = []
        self.calls: list[Call] = []
        self.latency_s = 0.0  # added to every answer: a far-away gateway, for benchmarks and concurrency tests
        self.received = 0  # requests that reached the endpoint, counted on arrival (a slow one is logged on leaving)
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests it was answering at once since the last reset
        self.app = Starlette(routes=[Route("/gateway.do", self._endpoint, methods=["GET", "POST"])])

    @classmethod
    def for_credentials(cls, creds: DemoCredentials, *, auth_tokens: Collection[str] = ()) -> SandboxGateway:
        return cls(
            alipay_private_key=creds.alipay_private_key,
            apps={creds.app_id: creds.app_public_key},
            auth_tokens=auth_tokens,
        )

    def fail_next(self, fault: Fault, *, times: int = 1, app_version: str | None = None) -> None:
        """Answer the next ``times`` calls that pass the request checks (and ask for ``app_version``, if given)
        with ``fault``. Faults queue in order; a refused request consumes none."""
        if times < 1:
            raise ValueError("times must be >= 1")
        self._faults.append(_Queued(fault, times, app_version))

    def reset(self) -> None:
        self.calls.clear()
        self._faults.clear()
        self.received = 0
        self.latency_s = 0.0
        self.max_in_flight = self.in_flight

    def _take_fault(self, app_version: str | None) -> Fault | None:
        for queued in self._faults:
            if queued.app_version is None or queued.app_version == app_version:
                queued.remaining -= 1
                if queued.remaining == 0:
                    self._faults.remove(queued)
                return queued.fault
        return None

    async def _endpoint(self, request: Request) -> Response:
        self.received += 1
        body = await request.body()
        params = merge_params(
            request.scope["query_string"].decode("utf-8", "replace"),
            body.decode("utf-8", "replace"),
            request.headers.get("content-type", ""),
        )
        biz = parse_biz(params.get("biz_content"))
        app_version, bundle_id = requested(biz)
        if request.method != "POST":
            self._log(params, app_version, bundle_id, "method-not-allowed", None)
            return JSONResponse(
                {"code": "405", "msg": "Method Not Allowed", "sub_msg": "gateway.do takes POST"},
                status_code=405,
                headers={"Allow": "POST"},
            )
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            wire, outcome = await self._answer(params, biz, app_version, bundle_id)
        finally:
            self.in_flight -= 1
        self._log(params, app_version, bundle_id, outcome, wire)
        return Response(wire.body, wire.status, media_type=wire.content_type)

    def _log(
        self,
        params: Mapping[str, str],
        app_version: str | None,
        bundle_id: str | None,
        outcome: str,
        wire: Wire | None,
    ) -> None:
        token = params.get("app_auth_token")
        self.calls.append(
            Call(
                app_id=params.get("app_id"),
                method=params.get("method"),
                sign_type=params.get("sign_type"),
                timestamp=params.get("timestamp"),
                app_version=app_version,
                bundle_id=bundle_id,
                app_auth_token_digest=token_digest(token) if token else None,
                outcome=outcome,
                code=None if wire is None else wire.code,
                sub_code=None if wire is None else wire.sub_code,
            )
        )

    async def _answer(
        self, params: Mapping[str, str], biz: Mapping[str, Any] | None, app_version: str | None, bundle_id: str | None
    ) -> tuple[Wire, str]:
        # Alipay signs with the key pair it keeps for each app: for an app it does not know it cannot sign.
        key = self._alipay_key if params.get("app_id") in self._apps else None
        sign_type = sign_type_of(params) or SignType.RSA2
        try:
            check_protocol(
                params,
                biz,
                apps=self._apps,
                auth_tokens=self._auth_tokens,
                now=self._clock(),
                tolerance_s=self._tolerance_s,
            )
        except Refusal as refusal:
            node_name = METHOD_NODE if key is not None and params.get("method") == METHOD else ERROR_NODE
            return signed(node_name, refusal.node, key, sign_type), refusal.outcome
        fault = self._take_fault(app_version)
        if fault is not None and fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        try:
            versions = self._tenants.get(params.get("app_auth_token", ""), self._versions)
            node = success_node(find_version(versions, self._bundle_ids, app_version, bundle_id))
            outcome = "ok"
        except Refusal as refusal:
            node, outcome = refusal.node, refusal.outcome
        if fault is None:
            return signed(METHOD_NODE, node, self._alipay_key, sign_type), outcome
        return render(fault, node, self._alipay_key, sign_type), fault.name
