"""Certificate mode, AES and v3: throw-away certificates and AES key, and a sandbox gateway that knows two apps,
one in public-key mode and one in certificate mode, both with an AES key (an app with a key may still send in
clear). Served over real HTTP once per session; both protocols answer on it.

Import the fixtures into a test module by name, as with ``tests.keyfixtures``.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from graph.gateway.certs import CertSNs
from graph.gateway.credentials import Credentials
from graph.gateway.keys import load_private_key, load_public_key
from graph.sandbox import DemoCredentials, SandboxGateway
from graph.sandbox.certs import CertChain, issue_cert_chain
from graph.sandbox.checks import App
from tests.conftest import MERCHANT_TOKEN
from tests.servers import serve

KEY_APP_ID = "2021000000000000"  # generate_credentials()'s app id: public-key mode
CERT_APP_ID = "2021000000000777"  # the same key pair, registered in certificate mode


@dataclass(frozen=True)
class Mode:
    """One way of talking to Alipay: the protocol, certificate mode or not, AES or not."""

    protocol: str
    cert: bool
    aes: bool

    @property
    def id(self) -> str:
        return self.protocol + ("+cert" if self.cert else "") + ("+aes" if self.aes else "")

    @property
    def app_id(self) -> str:
        return CERT_APP_ID if self.cert else KEY_APP_ID


ALL_MODES = [Mode(protocol, cert, aes) for protocol in ("v2", "v3") for cert in (False, True) for aes in (False, True)]
MODE_IDS = [mode.id for mode in ALL_MODES]


@pytest.fixture(scope="session")
def aes_key() -> bytes:
    return os.urandom(32)


@pytest.fixture(scope="session")
def cert_chain(demo_credentials: DemoCredentials) -> CertChain:
    return issue_cert_chain(
        CERT_APP_ID,
        demo_credentials.app_public_key,
        demo_credentials.alipay_private_key.public_key(),
        now=datetime.now(UTC),
    )


@pytest.fixture(scope="session")
def _modes_gateway(
    demo_credentials: DemoCredentials, cert_chain: CertChain, aes_key: bytes
) -> Iterator[tuple[SandboxGateway, str]]:
    gateway = SandboxGateway(
        alipay_private_key=demo_credentials.alipay_private_key,
        apps={
            KEY_APP_ID: App(demo_credentials.app_public_key, encrypt_key=aes_key),
            CERT_APP_ID: App(demo_credentials.app_public_key, app_cert_sn=cert_chain.app_cert_sn, encrypt_key=aes_key),
        },
        auth_tokens=[MERCHANT_TOKEN],
        alipay_cert_sn=cert_chain.alipay_cert_sn,
        alipay_root_cert_sn=cert_chain.alipay_root_cert_sn,
    )
    with serve(gateway.app) as url:
        yield gateway, url


@pytest.fixture
def modes_sandbox(_modes_gateway: tuple[SandboxGateway, str]) -> Iterator[SandboxGateway]:
    """The session's many-mode sandbox, with an empty call log and no queued faults for each test."""
    gateway = _modes_gateway[0]
    gateway.reset()
    yield gateway
    gateway.reset()


@pytest.fixture
def modes_url(modes_sandbox: SandboxGateway, _modes_gateway: tuple[SandboxGateway, str]) -> str:
    """The sandbox's base URL: v2 posts to ``{url}/gateway.do``, v3 gets ``{url}/v3/...``."""
    return _modes_gateway[1]


def gateway_url_for(mode: Mode, base_url: str) -> str:
    return f"{base_url}/gateway.do" if mode.protocol == "v2" else base_url


def credentials_for(
    mode: Mode, demo_credentials: DemoCredentials, cert_chain: CertChain, aes_key: bytes
) -> Credentials:
    """What Settings.from_environ would build for ``mode`` (the config tests check that it does)."""
    certs = None
    if mode.cert:
        certs = CertSNs(cert_chain.app_cert_sn, cert_chain.alipay_root_cert_sn, cert_chain.alipay_cert_sn)
    return Credentials(
        app_id=mode.app_id,
        private_key=load_private_key(demo_credentials.app_private_key_pem, "test app key"),
        alipay_public_key=load_public_key(demo_credentials.alipay_public_key_pem, "test Alipay key"),
        certs=certs,
        encrypt_key=aes_key if mode.aes else None,
    )


def env_for(
    mode: Mode,
    directory: Path,
    demo_credentials: DemoCredentials,
    cert_chain: CertChain,
    aes_key: bytes,
    base_url: str,
) -> dict[str, str]:
    """The environment a deployment in ``mode`` sets, with keys and certificates as files in ``directory``."""

    files = {
        "app_private_key.pem": demo_credentials.app_private_key_pem,
        "alipayPublicKey_RSA2.txt": demo_credentials.alipay_public_key_pem,
        f"appCertPublicKey_{CERT_APP_ID}.crt": cert_chain.app_cert_pem,
        "alipayCertPublicKey_RSA2.crt": cert_chain.alipay_cert_pem,
        "alipayRootCert.crt": cert_chain.root_cert_pem,
        "aes.key": base64.b64encode(aes_key).decode("ascii") + "\n",
    }
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    env = {
        "ALIPAY_APP_ID": mode.app_id,
        "ALIPAY_APP_PRIVATE_KEY_FILE": str(directory / "app_private_key.pem"),
        "ALIPAY_PROTOCOL": mode.protocol,
        "ALIPAY_GATEWAY_URL": gateway_url_for(mode, base_url),
        "GRAPH_ALLOW_ANONYMOUS": "true",
        "ALIPAY_TIMEOUT_S": "5",
    }
    if mode.cert:
        env |= {
            "ALIPAY_APP_CERT_FILE": str(directory / f"appCertPublicKey_{CERT_APP_ID}.crt"),
            "ALIPAY_PUBLIC_CERT_FILE": str(directory / "alipayCertPublicKey_RSA2.crt"),
            "ALIPAY_ROOT_CERT_FILE": str(directory / "alipayRootCert.crt"),
        }
    else:
        env["ALIPAY_PUBLIC_KEY_FILE"] = str(directory / "alipayPublicKey_RSA2.txt")
    if mode.aes:
        env["ALIPAY_ENCRYPT_KEY_FILE"] = str(directory / "aes.key")
    return env
