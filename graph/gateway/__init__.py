"""The Alipay gateway, apart from GraphQL: signing, the clients, their errors (no strawberry imports here)."""

from __future__ import annotations

from graph.gateway.base import Backoff, GatewayClient
from graph.gateway.certs import CertSNs
from graph.gateway.client import AlipayClient
from graph.gateway.credentials import Credentials
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
from graph.gateway.v3 import AlipayV3Client

__all__ = [
    "AlipayClient",
    "AlipayV3Client",
    "Backoff",
    "BusinessError",
    "CertSNs",
    "Credentials",
    "GatewayClient",
    "GatewayError",
    "GatewayProtocolError",
    "GatewayResponseError",
    "GatewayTransportError",
    "GatewayUnavailable",
    "SignType",
    "SignatureError",
]
