"""A stand-in for Alipay's gateway that is as strict as the real one and answers byte for byte like it.

v2 (``POST /gateway.do``): it checks requests in Alipay's order (parameters, app, format, timestamp in
Beijing time, certificate SNs, signature, method, merchant token, biz_content, decrypted first when
``encrypt_type=AES``), signs every answer it can with the Alipay key (an app it does not know gets an
unsigned ``error_response``). v3 (``GET /v3/...``): see ``graph.sandbox.v3``. Apps are registered
in public-key or certificate mode, with or without an AES key. Both sides serve the four read APIs of
``graph.sandbox.apis`` over the seeded versions, replay the same scripted faults (per method and version, if
asked) and write one call log, so tests can assert retries, batching and caching as observable behaviour
whatever the protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from graph.gateway.methods import READ_METHODS, response_node, v3_path
from graph.gateway.signing import SignType
from graph.gateway.v3 import (
    APP_AUTH_TOKEN_HEADER,
    AUTH_SCHEME,
    ENCRYPT_TYPE_HEADER,
    ROOT_CERT_SN_HEADER,
)
from graph.sandbox import apis, faults, v3
from graph.sandbox.calls import Call, token_digest
from graph.sandbox.checks import (
    App,
    Refusal,
    biz_text,
    check_protocol,
    merge_params,
    parse_biz,
    requested,
    sign_type_of,
)
from graph.sandbox.credentials import DemoCredentials
from graph.sandbox.faults import Fault
from graph.sandbox.seed import KNOWN_BUNDLE_IDS, SEED_VERSIONS
from graph.sandbox.wire import ERROR_NODE, Seal, Wire, success_node

_V3_METHODS = {v3_path(method): method for method in READ_METHODS}


@dataclass
class _Queued:
    fault: Fault
    remaining: int
    app_version: str | None
    method: str | None


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SandboxGateway:
    """POST /gateway.do and GET /v3/..., as Alipay's mini-program read APIs answer them."""

    def __init__(
        self,
        *,
        alipay_private_key: rsa.RSAPrivateKey,
        apps: Mapping[str, rsa.RSAPublicKey | App],
        auth_tokens: Collection[str] = (),
        versions: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
        tenants: Mapping[str, Mapping[tuple[str, str], Mapping[str, Any]]] | None = None,
        clock: Callable[[], datetime] = _utc_now,
        timestamp_tolerance_s: float = 900,
        alipay_cert_sn: str | None = None,
        alipay_root_cert_sn: str | None = None,
        experiences: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
        base_info: Mapping[str, Any] | None = None,
    ) -> None:
        """``apps`` maps app ids to their public key (public-key mode) or an ``App``; certificate-mode apps
        need ``alipay_cert_sn`` (of the certificate of ``alipay_private_key``) and ``alipay_root_cert_sn``."""
        self._alipay_key = alipay_private_key
        self._apps = {app_id: app if isinstance(app, App) else App(app) for app_id, app in apps.items()}
        if any(app.app_cert_sn for app in self._apps.values()) and not (alipay_cert_sn and alipay_root_cert_sn):
            raise ValueError("certificate-mode apps need alipay_cert_sn and alipay_root_cert_sn")
        self._alipay_cert_sn = alipay_cert_sn
        self._root_cert_sn = alipay_root_cert_sn
        # ISV mode: each merchant token may have versions of its own (a token with none sees the shared ones).
        self._tenants = dict(tenants or {})
        self._auth_tokens = frozenset(auth_tokens) | set(self._tenants)
        self._versions = SEED_VERSIONS if versions is None else versions
        # Clients beyond the five exist upstream; any a test seeds is one the gateway knows.
        seeded = [self._versions, *self._tenants.values()]
        self._bundle_ids = frozenset(KNOWN_BUNDLE_IDS) | {bundle_id for vs in seeded for _, bundle_id in vs}
        self._experiences = dict(experiences or {})  # (version, client) -> a trial answer other than the derived one
        self._base_info = base_info
        self._clock = clock
        self._tolerance_s = timestamp_tolerance_s
        self._faults: list[_Queued] = []
        self.calls: list[Call] = []
        self.latency_s = 0.0  # added to every answer: a far-away gateway, for benchmarks and concurrency tests
        self.received = 0  # requests answered or being answered (a slow one is logged only when it leaves)
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests it was answering at once since the last reset
        self.app = Starlette(
            routes=[
                Route("/gateway.do", self._endpoint, methods=["GET", "POST"]),
                *(Route(path, self._v3_endpoint, methods=["GET"]) for path in _V3_METHODS),
            ]
        )

    @classmethod
    def for_credentials(cls, creds: DemoCredentials, *, auth_tokens: Collection[str] = ()) -> SandboxGateway:
        """A gateway that knows one app, in public-key mode."""
        return cls(
            alipay_private_key=creds.alipay_private_key,
            apps={creds.app_id: creds.app_public_key},
            auth_tokens=auth_tokens,
        )

    def fail_next(
        self, fault: Fault, *, times: int = 1, app_version: str | None = None, method: str | None = None
    ) -> None:
        """Answer the next ``times`` calls that pass the request checks (and ask for ``app_version`` and call the
        v2-named ``method``, if given) with ``fault``. Faults queue in order; a refused request consumes none."""
        if times < 1:
            raise ValueError("times must be >= 1")
        self._faults.append(_Queued(fault, times, app_version, method))

    def reset(self) -> None:
        self.calls.clear()
        self._faults.clear()
        self.received = 0
        self.latency_s = 0.0
        self.max_in_flight = self.in_flight

    @contextlib.asynccontextmanager
    async def _serving(self) -> AsyncIterator[None]:
        """Count the request in flight while it is answered, after the configured latency."""
        self.received += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            yield
        finally:
            self.in_flight -= 1

    def _take_fault(self, method: str, app_version: str | None) -> Fault | None:
        for queued in self._faults:
            if queued.app_version in (None, app_version) and queued.method in (None, method):
                queued.remaining -= 1
                if queued.remaining == 0:
                    self._faults.remove(queued)
                return queued.fault
        return None

    async def _endpoint(self, request: Request) -> Response:
        body = await request.body()
        params = merge_params(
            request.scope["query_string"].decode("utf-8", "replace"),
            body.decode("utf-8", "replace"),
            request.headers.get("content-type", ""),
        )
        try:
            biz, biz_refusal = parse_biz(biz_text(params, self._apps)), None
        except Refusal as refusal:
            biz, biz_refusal = {}, refusal
        app_version, bundle_id = requested(biz)
        if request.method != "POST":
            self._log_v2(params, app_version, bundle_id, "method-not-allowed", None)
            return JSONResponse(
                {"code": "405", "msg": "Method Not Allowed", "sub_msg": "gateway.do takes POST"},
                status_code=405,
                headers={"Allow": "POST"},
            )
        async with self._serving():
            wire, outcome = await self._answer(params, biz, biz_refusal)
        self._log_v2(params, app_version, bundle_id, outcome, wire)
        return Response(wire.body, wire.status, media_type=wire.content_type)

    def _log_v2(
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
                encrypted=bool(params.get("encrypt_type")),
                app_cert_sn=params.get("app_cert_sn"),
                alipay_root_cert_sn=params.get("alipay_root_cert_sn"),
            )
        )

    def _seal(self, app: App | None, sign_type: SignType, *, encrypted: bool) -> Seal:
        # Alipay signs with the key pair it keeps for each app: for an app it does not know it cannot sign.
        if app is None:
            return Seal(None, sign_type)
        return Seal(
            self._alipay_key,
            sign_type,
            encrypt_key=app.encrypt_key if encrypted else None,
            cert_sn=self._alipay_cert_sn if app.app_cert_sn else None,
        )

    async def _answer(
        self,
        params: Mapping[str, str],
        biz: Mapping[str, Any] | None,
        biz_refusal: Refusal | None,
    ) -> tuple[Wire, str]:
        app = self._apps.get(params.get("app_id", ""))
        method = params.get("method", "")
        sign_type = sign_type_of(params) or SignType.RSA2
        try:
            check_protocol(
                params,
                biz,
                apps=self._apps,
                auth_tokens=self._auth_tokens,
                now=self._clock(),
                tolerance_s=self._tolerance_s,
                root_cert_sn=self._root_cert_sn,
                biz_refusal=biz_refusal,
            )
        except Refusal as refusal:
            node_name = response_node(method) if app is not None and method in READ_METHODS else ERROR_NODE
            return self._seal(app, sign_type, encrypted=False).wire(node_name, refusal.node), refusal.outcome
        # The request decrypted, so the API's answer goes back encrypted with the same key.
        seal = self._seal(app, sign_type, encrypted=bool(params.get("encrypt_type")))
        node, outcome, fault = await self._api(method, biz or {}, params["app_id"], params.get("app_auth_token"))
        if fault is None:
            return seal.wire(response_node(method), node), outcome
        return faults.render(fault, node, seal, response_node(method)), fault.name

    async def _api(
        self, method: str, args: Mapping[str, Any], app_id: str, app_auth_token: str | None
    ) -> tuple[dict[str, Any], str, Fault | None]:
        """The API's own answer (as a v2 node), its outcome, and the fault that replaces it, if one is queued."""
        fault = self._take_fault(method, requested(args)[0])
        if fault is not None and fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        versions = self._tenants.get(app_auth_token or "", self._versions)
        data = apis.Data(versions, self._bundle_ids, app_id, self._base_info, self._experiences)
        try:
            return success_node(apis.answer(method, args, data)), "ok", fault
        except Refusal as refusal:
            return refusal.node, refusal.outcome, fault

    async def _v3_endpoint(self, request: Request) -> Response:
        body = (await request.body()).decode("utf-8", "replace")
        query = request.scope["query_string"].decode("latin-1")
        raw_path = request.scope.get("raw_path") or request.url.path.encode("utf-8")
        # What the client signed: the request target exactly as it arrived, query included.
        path_query = raw_path.decode("latin-1") + (f"?{query}" if query else "")
        args = dict(parse_qsl(query, keep_blank_values=True))
        method = _V3_METHODS[request.url.path]
        app_version, bundle_id = requested(args)
        fields = _auth_fields(request.headers.get("authorization"))
        app = self._apps.get(fields.get("app_id", ""))
        encrypted = bool(request.headers.get(ENCRYPT_TYPE_HEADER))
        async with self._serving():
            now = self._clock()
            try:
                v3.check_request(
                    request.method,
                    path_query,
                    body,
                    request.headers,
                    apps=self._apps,
                    auth_tokens=self._auth_tokens,
                    now=now,
                    tolerance_s=self._tolerance_s,
                    root_cert_sn=self._root_cert_sn,
                )
            except Refusal as refusal:
                wire, outcome = self._v3_seal(app, now, encrypted=False).wire(refusal.node), refusal.outcome
            else:
                seal = self._v3_seal(app, now, encrypted=encrypted)
                node, outcome, fault = await self._api(
                    method, args, fields["app_id"], request.headers.get(APP_AUTH_TOKEN_HEADER)
                )
                wire = seal.wire(node) if fault is None else v3.render(fault, node, seal)
                outcome = outcome if fault is None else fault.name
        token = request.headers.get(APP_AUTH_TOKEN_HEADER)
        self.calls.append(
            Call(
                app_id=fields.get("app_id"),
                method="GET " + v3_path(method),
                sign_type=AUTH_SCHEME if fields else None,
                timestamp=fields.get("timestamp"),
                app_version=app_version,
                bundle_id=bundle_id,
                app_auth_token_digest=token_digest(token) if token else None,
                outcome=outcome,
                code=wire.code,
                sub_code=wire.sub_code,
                protocol="v3",
                encrypted=encrypted,
                app_cert_sn=fields.get("app_cert_sn"),
                alipay_root_cert_sn=request.headers.get(ROOT_CERT_SN_HEADER),
            )
        )
        return Response(wire.body, wire.status, headers=dict(wire.headers), media_type=wire.content_type)

    def _v3_seal(self, app: App | None, now: datetime, *, encrypted: bool) -> v3.V3Seal:
        if app is None:
            return v3.V3Seal(None, now)
        return v3.V3Seal(
            self._alipay_key,
            now,
            encrypt_key=app.encrypt_key if encrypted else None,
            cert_sn=self._alipay_cert_sn if app.app_cert_sn else None,
        )


def _auth_fields(authorization: str | None) -> Mapping[str, str]:
    """The v3 auth string's fields, for the call log and for choosing the seal; empty when unreadable."""
    try:
        return v3.parse_authorization(authorization).fields
    except Refusal:
        return {}
