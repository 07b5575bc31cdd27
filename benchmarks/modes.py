"""What certificate mode, AES and v3 add to a call's CPU cost, and what certificate mode costs at start-up.

    python benchmarks/modes.py [--rounds 300]

Client side only, no network: building the signed request (v2 parameters or v3 headers) and reading a signed
answer (verify, then decrypt and parse under AES), for each of the eight modes; then loading the three
certificates once. Prints medians.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from a checkout

from benchmarks.sign_verify import median_ms
from graph.gateway import aes, signing
from graph.gateway.certs import CertSNs, load_cert_mode
from graph.gateway.client import AlipayClient
from graph.gateway.credentials import Credentials
from graph.gateway.keys import load_private_key
from graph.gateway.v3 import AlipayV3Client, response_sign_content
from graph.sandbox import SEED_VERSIONS, DemoCredentials, generate_credentials
from graph.sandbox.certs import issue_cert_chain
from graph.sandbox.v3 import payload
from graph.sandbox.wire import METHOD_NODE, Seal, node_text, success_node

METHOD = "alipay.open.mini.version.detail.query"
BIZ = '{"app_version":"0.0.1","bundle_id":"com.alipay.alipaywallet"}'


@dataclass(frozen=True)
class Fixture:
    demo: DemoCredentials
    private: rsa.RSAPrivateKey
    certs: CertSNs
    aes_key: bytes


def actions(protocol: str, cert: bool, encrypt: bool, f: Fixture) -> tuple[Callable[[], object], Callable[[], object]]:
    """(build the signed request, read a signed answer) for one mode."""
    alipay_key = f.demo.alipay_private_key
    creds = Credentials(
        f.demo.app_id,
        f.private,
        alipay_key.public_key(),
        certs=f.certs if cert else None,
        encrypt_key=f.aes_key if encrypt else None,
    )
    node = success_node(SEED_VERSIONS["0.0.1", "com.alipay.alipaywallet"])
    if protocol == "v2":
        v2 = AlipayClient(creds, gateway_url="https://gw.invalid/gateway.do")
        body = Seal(alipay_key, encrypt_key=creds.encrypt_key).wire(METHOD_NODE, node).body.decode()
        # _verified_node is the read path without a socket.
        return (lambda: v2.signed_params(METHOD, BIZ, None)), (lambda: v2._verified_node(METHOD, body))
    v3 = AlipayV3Client(creds, gateway_url="https://gw.invalid")
    text = node_text(payload(node))
    answer = aes.encrypt(text, f.aes_key) if encrypt else text
    signature = signing.sign(response_sign_content("1", "n", answer).encode(), alipay_key, signing.SignType.RSA2)
    headers = {"alipay-signature": signature, "alipay-timestamp": "1", "alipay-nonce": "n"}

    def read() -> object:
        v3._verify(headers, answer, signature)
        return v3._success(answer)

    return (lambda: v3.signed_headers("GET", "/v3/alipay/open/mini/version/detail/query?a=b", "", None)), read


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    rounds = parser.parse_args().rounds

    demo = generate_credentials()
    private = load_private_key(demo.app_private_key_pem, "app key")
    now = datetime.now(UTC)
    chain = issue_cert_chain(demo.app_id, demo.app_public_key, demo.alipay_private_key.public_key(), now=now)
    certs = CertSNs(chain.app_cert_sn, chain.alipay_root_cert_sn, chain.alipay_cert_sn)
    fixture = Fixture(demo, private, certs, os.urandom(32))

    print(f"{'mode':14}{'request (ms)':>14}{'answer (ms)':>14}")  # noqa: T201
    for protocol in ("v2", "v3"):
        for cert in (False, True):
            for encrypt in (False, True):
                request, answer = actions(protocol, cert, encrypt, fixture)
                name = protocol + ("+cert" if cert else "") + ("+aes" if encrypt else "")
                print(f"{name:14}{median_ms(request, rounds):14.3f}{median_ms(answer, rounds):14.3f}")  # noqa: T201

    startup = median_ms(
        lambda: load_cert_mode(chain.app_cert_pem, chain.alipay_cert_pem, chain.root_cert_pem, private, now=now),
        max(20, rounds // 10),
    )
    print(f"certificate mode start-up (three files, SNs, checks): {startup:.3f} ms")  # noqa: T201
    print(f"medians of {rounds} runs, 2048-bit keys, one process")  # noqa: T201


if __name__ == "__main__":
    main()
