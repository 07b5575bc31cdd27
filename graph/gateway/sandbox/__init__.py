"""A protocol-faithful stand-in for Alipay's gateway (v2, v3, certificate mode, AES), for ``--demo`` and the tests."""

from __future__ import annotations

from graph.gateway.sandbox.calls import Call, token_digest
from graph.gateway.sandbox.checks import App
from graph.gateway.sandbox.credentials import DEMO_APP_ID, DemoCredentials, generate_credentials
from graph.gateway.sandbox.faults import Fault, FaultKind
from graph.gateway.sandbox.gateway import SandboxGateway
from graph.gateway.sandbox.seed import DEFAULT_BUNDLE_ID, KNOWN_BUNDLE_IDS, SEED_VERSIONS
from graph.gateway.sandbox.wire import ERROR_NODE, METHOD, METHOD_NODE

__all__ = [
    "DEFAULT_BUNDLE_ID",
    "DEMO_APP_ID",
    "ERROR_NODE",
    "KNOWN_BUNDLE_IDS",
    "METHOD",
    "METHOD_NODE",
    "SEED_VERSIONS",
    "App",
    "Call",
    "DemoCredentials",
    "Fault",
    "FaultKind",
    "SandboxGateway",
    "generate_credentials",
    "token_digest",
]
