"""A protocol-faithful stand-in for Alipay's gateway (v2, v3, certificate mode, AES), for ``--demo`` and the tests."""

from __future__ import annotations

from graph.sandbox.calls import Call, token_digest
from graph.sandbox.checks import App
from graph.sandbox.credentials import DEMO_APP_ID, DemoCredentials, generate_credentials
from graph.sandbox.faults import Fault, FaultKind
from graph.sandbox.gateway import SandboxGateway
from graph.sandbox.seed import DEFAULT_BUNDLE_ID, KNOWN_BUNDLE_IDS, SEED_VERSIONS
from graph.sandbox.wire import ERROR_NODE, METHOD, METHOD_NODE

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
