"""The v3 (OpenAPI 3) client: ``GET /v3/<method as a path>?<arguments>`` with a signed header.

Request: ``Authorization: ALIPAY-SHA256withRSA app_id=..[,app_cert_sn=..],nonce=..,timestamp=..,sign=..``
where ``sign`` covers ``authString\\nMETHOD\\npath?query\\nbody\\n`` (plus ``appAuthToken\\n`` when acting
for a merchant, whose token rides in ``alipay-app-auth-token``). Certificate mode adds ``app_cert_sn`` to
the auth string and the ``alipay-root-cert-sn`` header; AES adds ``alipay-encrypt-type: AES`` and the 200
body comes back as a ciphertext. Answers are verified over ``alipay-timestamp\\nalipay-nonce\\nbody\\n``
(header ``alipay-signature``) before a byte is parsed; errors are HTTP 4xx/5xx with ``{code, message}``.
RSA2 and UTF-8 only. The signed ``path?query`` is taken from the URL exactly as it goes on the wire.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from graph.gateway import aes, signing
from graph.gateway.attempts import AttemptObserver
from graph.gateway.base import DEFAULT_BACKOFF, Admit, Backoff, Clock, GatewayClient, Sleep, utc_now
from graph.gateway.breaker import CircuitBreaker
from graph.gateway.credentials import Credentials
from graph.gateway.errors import (
    GatewayProtocolError,
    GatewayTransportError,
    SignatureError,
    v3_response_error,
)
from graph.gateway.methods import VERSION_DETAIL, v3_path
from graph.gateway.signing import SignType

DEFAULT_V3_GATEWAY_URL = "https://openapi.alipay.com"
VERSION_DETAIL_PATH = v3_path(VERSION_DETAIL)
AUTH_SCHEME = "ALIPAY-SHA256withRSA"
# Header names, lower case as Alipay writes them (HTTP header names are case-insensitive).
APP_AUTH_TOKEN_HEADER = "alipay-app-auth-token"  # noqa: S105  (a header name, not a token)
ROOT_CERT_SN_HEADER = "alipay-root-cert-sn"
ENCRYPT_TYPE_HEADER = "alipay-encrypt-type"
SIGNATURE_HEADER = "alipay-signature"
TIMESTAMP_HEADER = "alipay-timestamp"
NONCE_HEADER = "alipay-nonce"
CERT_SN_HEADER = "alipay-sn"


def auth_string(app_id: str, app_cert_sn: str | None, nonce: str, timestamp_ms: str) -> str:
    cert = f",app_cert_sn={app_cert_sn}" if app_cert_sn else ""
    return f"app_id={app_id}{cert},nonce={nonce},timestamp={timestamp_ms}"


def request_sign_content(auth: str, method: str, path_query: str, body: str, app_auth_token: str | None) -> str:
    """The text a v3 request's ``sign`` covers."""
    token = f"{app_auth_token}\n" if app_auth_token else ""
    return f"{auth}\n{method}\n{path_query}\n{body}\n{token}"


def response_sign_content(timestamp: str, nonce: str, body: str) -> str:
    """The text a v3 answer's ``alipay-signature`` covers."""
    return f"{timestamp}\n{nonce}\n{body}\n"


def _uuid_nonce() -> str:
    return str(uuid.uuid4())


class AlipayV3Client(GatewayClient):
    """Signed calls to Alipay's v3 (OpenAPI 3) endpoints."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        gateway_url: str = DEFAULT_V3_GATEWAY_URL,
        timeout_s: float = 5.0,
        retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff: Backoff = DEFAULT_BACKOFF,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = utc_now,
        max_connections: int = 16,
        nonce: Callable[[], str] = _uuid_nonce,
        observer: AttemptObserver | None = None,
        deadline_s: float | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        if credentials.sign_type is not SignType.RSA2:
            raise ValueError("the v3 protocol signs with RSA2 only")
        super().__init__(
            credentials,
            gateway_url=gateway_url.rstrip("/"),  # the base URL, with or without a trailing slash
            timeout_s=timeout_s,
            retries=retries,
            transport=transport,
            backoff=backoff,
            sleep=sleep,
            clock=clock,
            max_connections=max_connections,
            observer=observer,
            deadline_s=deadline_s,
            breaker=breaker,
        )
        self._nonce = nonce

    async def call(
        self, method: str, params: Mapping[str, str], *, app_auth_token: str | None = None, admit: Admit | None = None
    ) -> dict[str, Any]:
        """GET ``method``'s v3 path with ``params`` in the query string; the verified answer (the bare fields, no
        ``_response`` wrapper)."""
        path = v3_path(method)
        query = "&".join(f"{_quote(name)}={_quote(value)}" for name, value in params.items())
        url = httpx.URL(f"{self._url}{path}?{query}" if query else f"{self._url}{path}")
        return await self._retrying(path, lambda: self._attempt(url, app_auth_token), admit)

    def signed_headers(self, method: str, path_query: str, body: str, app_auth_token: str | None) -> dict[str, str]:
        """The headers that authenticate one request (a fresh nonce and timestamp each time)."""
        creds = self._credentials
        timestamp_ms = str(int(self._clock().timestamp() * 1000))
        auth = auth_string(creds.app_id, creds.certs.app_cert_sn if creds.certs else None, self._nonce(), timestamp_ms)
        content = request_sign_content(auth, method, path_query, body, app_auth_token)
        sign = signing.sign(content.encode("utf-8"), creds.private_key, SignType.RSA2)
        headers = {"Authorization": f"{AUTH_SCHEME} {auth},sign={sign}"}
        if app_auth_token:
            headers[APP_AUTH_TOKEN_HEADER] = app_auth_token
        if creds.certs is not None:
            headers[ROOT_CERT_SN_HEADER] = creds.certs.alipay_root_cert_sn
        if creds.encrypt_key is not None:
            headers[ENCRYPT_TYPE_HEADER] = "AES"
        return headers

    async def _attempt(self, url: httpx.URL, app_auth_token: str | None) -> dict[str, Any]:
        headers = self.signed_headers("GET", url.raw_path.decode("ascii"), "", app_auth_token)
        try:
            response = await self._http.get(url, headers=headers)
        except httpx.TimeoutException:
            raise GatewayTransportError("gateway timed out") from None
        except httpx.TransportError as exc:
            raise GatewayTransportError(f"gateway unreachable ({type(exc).__name__})") from None
        return self._answer(response)

    def _answer(self, response: httpx.Response) -> dict[str, Any]:
        status = response.status_code
        try:
            body = response.content.decode("utf-8")
        except UnicodeDecodeError:
            if status >= 500:
                raise GatewayTransportError(f"gateway answered HTTP {status}") from None
            raise GatewayProtocolError("gateway body is not UTF-8") from None
        signature = response.headers.get(SIGNATURE_HEADER)
        # As in v2: a success must be signed; an error is verified when it carries a signature.
        if signature is not None:
            self._verify(response.headers, body, signature)
        if status == 200:
            if signature is None:
                if _is_json(body):
                    raise SignatureError("gateway answer is unsigned; refusing to use it")
                raise GatewayProtocolError("gateway answered 200 with neither a signature nor JSON (not Alipay?)")
            return self._success(body)
        error = _error_fields(body) if status >= 400 else None
        if error is not None:
            raise v3_response_error(status, *error, signed=signature is not None)
        if status >= 500:
            raise GatewayTransportError(f"gateway answered HTTP {status}")
        raise GatewayProtocolError(f"gateway answered HTTP {status}")

    def _verify(self, headers: Mapping[str, str], body: str, signature: str) -> None:
        creds = self._credentials
        sn = headers.get(CERT_SN_HEADER)
        if creds.certs is not None and sn is not None and sn != creds.certs.alipay_cert_sn:
            raise SignatureError(
                f"gateway answer names Alipay certificate {sn}, not the configured {creds.certs.alipay_cert_sn}: "
                "download Alipay's current alipayCertPublicKey_RSA2.crt and point ALIPAY_PUBLIC_CERT_FILE at it"
            )
        timestamp, nonce = headers.get(TIMESTAMP_HEADER), headers.get(NONCE_HEADER)
        if timestamp is None or nonce is None:
            raise SignatureError("gateway answer's signature comes without alipay-timestamp or alipay-nonce")
        content = response_sign_content(timestamp, nonce, body).encode("utf-8")
        if not signing.verify(content, signature, creds.alipay_public_key, SignType.RSA2):
            raise SignatureError(f"gateway answer's signature does not verify: {creds.verification_hint()}")

    def _success(self, body: str) -> dict[str, Any]:
        text, key = body, self._credentials.encrypt_key
        if key is not None:
            try:
                text = aes.decrypt(body, key)  # the body is the bare base64 text, as the Node SDK reads it
            except aes.DecryptError:
                raise GatewayProtocolError(
                    "gateway answer does not decrypt: check that ALIPAY_ENCRYPT_KEY is the app's AES key"
                ) from None
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise GatewayProtocolError("gateway body is not valid JSON") from None
        if not isinstance(value, dict):
            raise GatewayProtocolError("gateway answer is not a JSON object")
        return value


def _quote(value: str) -> str:
    """Percent-encode as the transports send it: aiohttp (yarl) decodes ``%2C`` and the other characters kept
    here, and the signature covers the request target as it goes on the wire. httpx leaves them as they are."""
    return quote(value, safe="!$'()*,:@/?")


def _is_json(body: str) -> bool:
    try:
        json.loads(body)
    except json.JSONDecodeError:
        return False
    return True


def _error_fields(body: str) -> tuple[str, str] | None:
    """(code, message) of a v3 error body, or None when it is not one (an HTML error page, say)."""
    try:
        value = json.loads(body)
    except json.JSONDecodeError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("code"), str) or not value["code"]:
        return None
    message = value.get("message")
    return value["code"], message if isinstance(message, str) else ""
