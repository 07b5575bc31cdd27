"""Secrets hygiene beyond the per-test audit (conftest's ``_secrets_audit``, which runs every test's scenario with
logging at DEBUG and searches what was logged): the audit itself finds what it should, reprs are clean, and real
processes (the CLI at GRAPH_LOG_LEVEL=DEBUG, bad configurations) print no secret on stdout or stderr."""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from graph.config import ConfigError, Settings
from graph.data.source import VersionKey
from graph.fleet.seal import derive_key
from graph.gateway.breaker import CircuitBreaker
from graph.gateway.client import Credentials
from graph.gateway.errors import BusinessError, CircuitOpen
from graph.http.access import fingerprint
from graph.sandbox import Call, DemoCredentials, SandboxGateway, token_digest
from tests.conftest import API_KEY, MERCHANT_TOKEN, OTHER_API_KEY
from tests.redis_server import RedisServer
from tests.secrets_audit import SECRETS, Secrets, capture_text

ROOT = Path(__file__).resolve().parent.parent
STATUS = "query($v: String!) { miniAppVersion(appVersion: $v) { appVersion status } }"


def test_the_audit_finds_each_kind_of_secret(demo_credentials: DemoCredentials) -> None:
    secrets = Secrets()
    secrets.add(MERCHANT_TOKEN, API_KEY)
    secrets.add_base64(demo_credentials.app_private_key_pem)
    sign = "Xb0+/eW" * 49 + "=="  # the shape of an RSA2 signature, '+' and '/' included
    secrets.signs.add(sign)
    body = "".join(demo_credentials.app_private_key_pem.splitlines()[1:-1])
    planted = {
        "token": f"calling for {MERCHANT_TOKEN}",
        "api key": f"Authorization: Bearer {API_KEY}",
        "key, 40 characters of it": f"oops {body[500:540]} oops",
        "key, as PEM lines": demo_credentials.app_private_key_pem,
        "sign in a URL": f"POST /gateway.do?app_id=1&sign={quote(sign, safe='')}",
        "sign in a body": f'{{"sign":"{sign}"}}',
    }
    for what, text in planted.items():
        record = logging.makeLogRecord({"msg": "%s", "args": (text,), "name": "t", "levelname": "INFO"})
        assert secrets.found_in(capture_text([record])), what
    clean = logging.makeLogRecord({"msg": "request", "request_id": "a" * 32, "sign_type": "RSA2"})
    assert secrets.found_in(capture_text([clean])) == []


def test_reprs_hold_no_secrets(credentials: Credentials) -> None:
    settings = Settings(
        credentials=credentials,
        api_keys=frozenset({API_KEY, OTHER_API_KEY}),
        cache_url="redis://:hunter2-redis-password@127.0.0.1:6379/0",
    )
    call = Call(
        app_id="2021",
        method="m",
        sign_type="RSA2",
        timestamp="t",
        app_version="1",
        bundle_id="b",
        app_auth_token_digest=token_digest(MERCHANT_TOKEN),
        outcome="ok",
        code="10000",
        sub_code=None,
    )
    shown = " ".join(
        [
            repr(settings),
            str(settings),
            repr(credentials),
            repr(call),
            repr(VersionKey(MERCHANT_TOKEN, "0.0.1", "com.amap.app")),
            str(VersionKey(MERCHANT_TOKEN, "0.0.1", "com.amap.app")),
            repr(
                BusinessError(
                    "20001", "Insufficient Token Permissions", "aop.invalid-app-auth-token", None, signed=True
                )
            ),
            repr(CircuitBreaker("http://gw.test/gateway.do")),
            fingerprint(API_KEY),
        ]
    )
    assert SECRETS.found_in(shown) == []
    assert "hunter2" not in shown
    assert "'***'" in repr(VersionKey(MERCHANT_TOKEN, "0.0.1", "com.amap.app"))
    breaker = CircuitBreaker("gw", failures=1)
    breaker.after_call(False, probe=breaker.before_call())
    with pytest.raises(CircuitOpen) as refused:
        breaker.before_call()
    assert SECRETS.found_in(str(refused.value) + repr(refused.value)) == []


def run(*args: str, env: dict[str, str]) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ALIPAY_", "GRAPH_"))}
    result = subprocess.run(
        [sys.executable, "-m", "graph", *args],
        capture_output=True,
        text=True,
        env={**base, "GRAPH_LOG_LEVEL": "DEBUG", "GRAPH_LOG_FORMAT": "text", **env},
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    return result.stdout + result.stderr


@pytest.fixture
def key_env(demo_credentials: DemoCredentials, gateway_url: str, tmp_path: Path) -> dict[str, str]:
    private = tmp_path / "app_private_key.pem"
    private.write_text(demo_credentials.app_private_key_pem, encoding="utf-8")
    return {
        "ALIPAY_APP_ID": demo_credentials.app_id,
        "ALIPAY_APP_PRIVATE_KEY_FILE": str(private),
        "ALIPAY_PUBLIC_KEY": demo_credentials.alipay_public_key_pem,
        "ALIPAY_GATEWAY_URL": gateway_url,
    }


def test_a_debug_query_process_prints_no_secret(key_env: dict[str, str], sandbox: SandboxGateway) -> None:
    # Success, then a business error; each signed on the wire (the sandbox records those signatures for the audit).
    printed = run("query", STATUS, "--variables", '{"v": "0.0.1"}', env=key_env)
    printed += run("query", STATUS, "--variables", '{"v": "9.9.9"}', env=key_env)
    assert '"appVersion": "0.0.1"' in printed
    assert "VERSION_NOT_EXIST" in printed
    assert len(SECRETS.signs) >= 4  # two requests, two answers: what the audit looks for in the output
    assert SECRETS.found_in(printed) == []


def test_bad_configurations_print_no_secret(
    key_env: dict[str, str], demo_credentials: DemoCredentials, tmp_path: Path
) -> None:
    lines = demo_credentials.app_private_key_pem.splitlines()
    damaged = "\n".join([lines[0], lines[1][:-4] + "!!!!", *lines[2:]])  # a real key with a bad character
    truncated = "\n".join(lines[:10])
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text(f"{API_KEY}\nbad key with spaces\n", encoding="utf-8")
    printed = ""
    for changes in (
        {"ALIPAY_APP_PRIVATE_KEY": damaged, "ALIPAY_APP_PRIVATE_KEY_FILE": ""},
        {"ALIPAY_APP_PRIVATE_KEY": truncated, "ALIPAY_APP_PRIVATE_KEY_FILE": ""},
        {"ALIPAY_PUBLIC_KEY": demo_credentials.app_private_key_pem},  # a private key pasted as Alipay's
        {"GRAPH_API_KEYS_FILE": str(keys_file)},
        {"GRAPH_API_KEYS": f"{API_KEY},{OTHER_API_KEY}", "GRAPH_API_KEYS_FILE": str(keys_file)},
    ):
        out = run("query", STATUS, "--variables", '{"v": "0.0.1"}', env={**key_env, **changes})
        assert out.startswith("alipay-graph: "), out
        printed += out
    assert SECRETS.found_in(printed) == []
    assert "bad key with spaces" not in printed


def test_config_errors_never_quote_keys(key_env: dict[str, str], tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text(f"{API_KEY}\nkey\twith a tab\n", encoding="utf-8")
    with pytest.raises(ConfigError) as bad:
        Settings.from_environ({**key_env, "GRAPH_API_KEYS_FILE": str(keys_file)})
    assert str(bad.value) == "GRAPH_API_KEYS_FILE: key number 2 holds characters other than visible ASCII"


def test_the_cache_signing_key_is_never_printed(
    key_env: dict[str, str], sandbox: SandboxGateway, redis_server: RedisServer, credentials: Credentials
) -> None:
    signing_key = "secrets-test-cache-signing-key-3b8e0f6a1c"
    derived = derive_key(credentials.private_key)
    watched = [
        signing_key,
        derived.hex(),
        base64.b64encode(derived).decode(),
        base64.urlsafe_b64encode(derived).decode(),
    ]
    SECRETS.add(*watched)
    redis = {**key_env, "GRAPH_CACHE_URL": redis_server.url}
    printed = run("query", STATUS, "--variables", '{"v": "0.0.1"}', env=redis)  # the derived key
    printed += run(
        "query", STATUS, "--variables", '{"v": "0.0.1"}', env={**redis, "GRAPH_CACHE_SIGNING_KEY": signing_key}
    )
    assert printed.count('"appVersion": "0.0.1"') == 2
    refused = run("query", STATUS, env={**redis, "GRAPH_CACHE_SIGNING_KEY": signing_key[:31]})
    assert refused.startswith("alipay-graph: GRAPH_CACHE_SIGNING_KEY: expected a secret of 32 to 1024 bytes"), refused
    printed += refused + run("serve", "--help", env={**redis, "GRAPH_CACHE_SIGNING_KEY": signing_key})
    assert not [secret for secret in watched if secret in printed]
    assert not [secret for secret in watched if secret[:16] in printed]  # nor half of one
