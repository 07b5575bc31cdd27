"""``--demo``: the embedded sandbox gateway, reached through the real client path (sign, send, verify, parse)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from graph.gateway.credentials import Credentials
from graph.gateway.keys import load_private_key, load_public_key
from graph.sandbox import SandboxGateway, generate_credentials

# A name that cannot resolve: the demo's traffic goes through an in-process ASGI transport, never the network.
DEMO_BASE_URL = "https://sandbox.demo.invalid"
DEMO_GATEWAY_URL = f"{DEMO_BASE_URL}/gateway.do"
DEMO_APP_AUTH_TOKEN = "202611BBdemo0000000000000000000000000001"  # noqa: S105  (a demo merchant's token, not a secret)


@dataclass(frozen=True)
class Demo:
    sandbox: SandboxGateway
    credentials: Credentials
    transport: httpx.AsyncBaseTransport
    gateway_url: str = DEMO_GATEWAY_URL


def start_demo(protocol: str = "v2") -> Demo:
    """Throw-away keys on both sides and a sandbox that knows them; ``protocol`` picks the v2 or v3 side."""
    creds = generate_credentials()
    sandbox = SandboxGateway.for_credentials(creds, auth_tokens=[DEMO_APP_AUTH_TOKEN])
    credentials = Credentials(
        app_id=creds.app_id,
        private_key=load_private_key(creds.app_private_key_pem, "demo app key"),
        alipay_public_key=load_public_key(creds.alipay_public_key_pem, "demo Alipay key"),
    )
    return Demo(
        sandbox=sandbox,
        credentials=credentials,
        transport=httpx.ASGITransport(app=sandbox.app),
        gateway_url=DEMO_BASE_URL if protocol == "v3" else DEMO_GATEWAY_URL,
    )
