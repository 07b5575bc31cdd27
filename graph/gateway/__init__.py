"""The Alipay gateway, apart from GraphQL: signing, the client, its errors (no strawberry imports here)."""

from __future__ import annotations

from graph.gateway.client import AlipayClient, Backoff, Credentials
from graph.gateway.errors import (
    BusinessError,
    GatewayError,
    GatewayProtocolError,
    GatewayResponseError,
    GatewayTransportError,
    GatewayUnavailable,
    SignatureError,
)
from graph.gateway.signing import SignType

__all__ = [
    "AlipayClient",
    "Backoff",
    "BusinessError",
    "Credentials",
    "GatewayError",
    "GatewayProtocolError",
    "GatewayResponseError",
    "GatewayTransportError",
    "GatewayUnavailable",
    "SignType",
    "SignatureError",
]
