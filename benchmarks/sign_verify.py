"""Cost of one RSA2 sign and one verify: ours (cryptography) against the official SDK (pure-Python rsa).

    python benchmarks/sign_verify.py [--rounds 300]

Prints the median of many runs for each, and our speed-up over the SDK measured in the same run.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from graph.gateway import signing

CONTENT = (
    'app_id=2021004100000000&biz_content={"app_version":"0.0.1","bundle_id":"com.alipay.alipaywallet"}'
    "&charset=utf-8&format=json&method=alipay.open.mini.version.detail.query&sign_type=RSA2"
    "&timestamp=2026-11-29 00:41:29&version=1.0"
)


def median_ms(action: Callable[[], object], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    rounds = parser.parse_args().rounds

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key()
    data = CONTENT.encode()
    signature = signing.sign(data, key, signing.SignType.RSA2)
    ours_sign = median_ms(lambda: signing.sign(data, key, signing.SignType.RSA2), rounds)
    ours_verify = median_ms(lambda: signing.verify(data, signature, public, signing.SignType.RSA2), rounds)

    from alipay.aop.api.util.SignatureUtils import sign_with_rsa2, verify_with_rsa

    pkcs1 = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    pkcs1_body = "".join(line for line in pkcs1.splitlines() if not line.startswith("-----"))
    spki_body = base64.b64encode(
        public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).decode()
    sdk_rounds = max(20, rounds // 10)  # the SDK is ~30x slower; fewer rounds keep the run short
    sdk_sign = median_ms(lambda: sign_with_rsa2(pkcs1_body, CONTENT, "utf-8"), sdk_rounds)
    sdk_verify = median_ms(lambda: verify_with_rsa(spki_body, data, signature), sdk_rounds)

    print(f"{'':14}{'ours (ms)':>12}{'official SDK (ms)':>20}{'speed-up':>10}")  # noqa: T201
    for name, mine, theirs in (("RSA2 sign", ours_sign, sdk_sign), ("RSA2 verify", ours_verify, sdk_verify)):
        print(f"{name:14}{mine:12.3f}{theirs:20.3f}{theirs / mine:9.1f}x")  # noqa: T201
    print(f"medians of {rounds} (ours) and {sdk_rounds} (SDK) runs, 2048-bit key, one process")  # noqa: T201


if __name__ == "__main__":
    main()
