"""graph.config for certificate mode, AES and v3: what each variable accepts and every way it stops start-up."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from graph.config import CERT_FILES, ConfigError, Settings
from graph.sandbox import DemoCredentials
from graph.sandbox.certs import CertChain, issue, issue_cert_chain, name, pem
from graph.sandbox.credentials import new_rsa_key
from tests.modefixtures import CERT_APP_ID, Mode, aes_key, cert_chain, env_for

__all__ = ["aes_key", "cert_chain"]  # session fixtures used by name below

ROOT = Path(__file__).resolve().parent.parent
BASE_URL = "http://gateway.test"


@pytest.fixture
def make_env(
    tmp_path: Path, demo_credentials: DemoCredentials, cert_chain: CertChain, aes_key: bytes
) -> Callable[[Mode], dict[str, str]]:
    def make(mode: Mode) -> dict[str, str]:
        return env_for(mode, tmp_path, demo_credentials, cert_chain, aes_key, BASE_URL)

    return make


def _config_error(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as info:
        Settings.from_environ(env)
    message = str(info.value)
    assert "\n" not in message
    assert "PRIVATE KEY" not in message
    return message


# --------------------------------------------------------------------------------------- certificate mode


def test_certificate_mode(
    make_env: Callable[[Mode], dict[str, str]], cert_chain: CertChain, demo_credentials: DemoCredentials
) -> None:
    credentials = Settings.from_environ(make_env(Mode("v2", cert=True, aes=False))).credentials
    assert credentials is not None
    assert credentials.certs is not None
    assert (credentials.certs.app_cert_sn, credentials.certs.alipay_root_cert_sn, credentials.certs.alipay_cert_sn) == (
        cert_chain.app_cert_sn,
        cert_chain.alipay_root_cert_sn,
        cert_chain.alipay_cert_sn,
    )
    alipay = demo_credentials.alipay_private_key.public_key()
    assert credentials.alipay_public_key.public_numbers() == alipay.public_numbers()
    assert repr(credentials) == f"Credentials(app_id='{CERT_APP_ID}', sign_type=RSA2, cert_mode)"


@pytest.mark.parametrize("missing", CERT_FILES)
def test_certificate_mode_needs_all_three_files(make_env: Callable[[Mode], dict[str, str]], missing: str) -> None:
    env = make_env(Mode("v2", cert=True, aes=False))
    env[missing] = " "
    message = _config_error(env)
    assert message == (
        "certificate mode needs ALIPAY_APP_CERT_FILE, ALIPAY_PUBLIC_CERT_FILE, ALIPAY_ROOT_CERT_FILE; "
        f"not set: {missing}"
    )


@pytest.mark.parametrize("public_key", ["ALIPAY_PUBLIC_KEY", "ALIPAY_PUBLIC_KEY_FILE"])
def test_certificate_mode_and_a_public_key_at_once(
    make_env: Callable[[Mode], dict[str, str]], demo_credentials: DemoCredentials, public_key: str
) -> None:
    env = make_env(Mode("v2", cert=True, aes=False))
    env[public_key] = demo_credentials.alipay_public_key_pem
    assert _config_error(env) == (
        "ALIPAY_PUBLIC_KEY and ALIPAY_*_CERT_FILE: set Alipay's public key or the three certificates, not both"
    )
    # One certificate variable beside a public key is "both" too, not "missing two".
    env = make_env(Mode("v2", cert=False, aes=False)) | {"ALIPAY_ROOT_CERT_FILE": env["ALIPAY_ROOT_CERT_FILE"]}
    assert "not both" in _config_error(env)


def test_an_unreadable_certificate_file(make_env: Callable[[Mode], dict[str, str]], tmp_path: Path) -> None:
    env = make_env(Mode("v2", cert=True, aes=False)) | {"ALIPAY_PUBLIC_CERT_FILE": str(tmp_path / "nowhere.crt")}
    message = _config_error(env)
    assert message.startswith("ALIPAY_PUBLIC_CERT_FILE: cannot read ")
    assert "FileNotFoundError" in message


@pytest.mark.parametrize(
    ("variable", "text", "message"),
    [
        ("ALIPAY_APP_CERT_FILE", "not a certificate", "ALIPAY_APP_CERT_FILE: not a readable certificate"),
        ("ALIPAY_ROOT_CERT_FILE", "", "ALIPAY_ROOT_CERT_FILE: holds no RSA-signed root certificate"),
    ],
)
def test_unusable_certificate_files(
    make_env: Callable[[Mode], dict[str, str]], tmp_path: Path, variable: str, text: str, message: str
) -> None:
    bad = tmp_path / "bad.crt"
    bad.write_text(text, encoding="utf-8")
    assert _config_error(make_env(Mode("v2", cert=True, aes=False)) | {variable: str(bad)}).startswith(message)


def test_an_expired_app_certificate(
    make_env: Callable[[Mode], dict[str, str]], tmp_path: Path, demo_credentials: DemoCredentials
) -> None:
    now = datetime.now(UTC)
    issuer_key = new_rsa_key()
    expired = issue(
        name("app"),
        demo_credentials.app_public_key,
        issuer=name("CA"),
        issuer_key=issuer_key,
        not_before=now - timedelta(days=730),
        not_after=now - timedelta(days=365),
    )
    path = tmp_path / "expired.crt"
    path.write_text(pem(expired), encoding="utf-8")
    message = _config_error(make_env(Mode("v2", cert=True, aes=False)) | {"ALIPAY_APP_CERT_FILE": str(path)})
    assert message.startswith("ALIPAY_APP_CERT_FILE: the certificate expired on ")


def test_an_app_certificate_for_another_key(make_env: Callable[[Mode], dict[str, str]], tmp_path: Path) -> None:
    other = issue_cert_chain(CERT_APP_ID, new_rsa_key().public_key(), new_rsa_key().public_key(), now=datetime.now(UTC))
    path = tmp_path / "other.crt"
    path.write_text(other.app_cert_pem, encoding="utf-8")
    message = _config_error(make_env(Mode("v2", cert=True, aes=False)) | {"ALIPAY_APP_CERT_FILE": str(path)})
    assert message == (
        "ALIPAY_APP_CERT_FILE: the certificate is not for the key in ALIPAY_APP_PRIVATE_KEY "
        "(use the appCertPublicKey_<app id>.crt issued for this private key)"
    )


# ----------------------------------------------------------------------------------------------------- AES


def test_aes_key_from_a_file_or_inline(make_env: Callable[[Mode], dict[str, str]], aes_key: bytes) -> None:
    env = make_env(Mode("v2", cert=False, aes=True))
    credentials = Settings.from_environ(env).credentials
    assert credentials is not None
    assert credentials.encrypt_key == aes_key
    del env["ALIPAY_ENCRYPT_KEY_FILE"]
    env["ALIPAY_ENCRYPT_KEY"] = base64.b64encode(aes_key).decode()
    credentials = Settings.from_environ(env).credentials
    assert credentials is not None
    assert credentials.encrypt_key == aes_key
    assert repr(credentials).endswith(", aes)")
    assert env["ALIPAY_ENCRYPT_KEY"] not in repr(Settings.from_environ(env))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (base64.b64encode(bytes(20)).decode(), "ALIPAY_ENCRYPT_KEY: an AES key is 16, 24 or 32 bytes; this one is 20"),
        ("not-base64!", "ALIPAY_ENCRYPT_KEY: not base64"),
    ],
)
def test_unusable_aes_keys(make_env: Callable[[Mode], dict[str, str]], value: str, message: str) -> None:
    env = make_env(Mode("v2", cert=False, aes=False)) | {"ALIPAY_ENCRYPT_KEY": value}
    shown = _config_error(env)
    assert shown.startswith(message)
    assert value not in shown


def test_aes_key_inline_and_as_a_file(make_env: Callable[[Mode], dict[str, str]]) -> None:
    env = make_env(Mode("v2", cert=False, aes=True)) | {"ALIPAY_ENCRYPT_KEY": base64.b64encode(os.urandom(16)).decode()}
    assert _config_error(env) == "ALIPAY_ENCRYPT_KEY and ALIPAY_ENCRYPT_KEY_FILE: set one, not both"


# ------------------------------------------------------------------------------------------------------ v3


def test_v3_refuses_the_legacy_sign_type(make_env: Callable[[Mode], dict[str, str]]) -> None:
    env = make_env(Mode("v3", cert=False, aes=False)) | {"ALIPAY_SIGN_TYPE": "RSA"}
    assert _config_error(env) == "ALIPAY_SIGN_TYPE: the v3 protocol signs with RSA2 only (unset it or set RSA2)"
    assert Settings.from_environ(env | {"ALIPAY_SIGN_TYPE": "rsa2"}).protocol == "v3"


@pytest.mark.parametrize("url", ["https://openapi.alipay.com/gateway.do", "https://openapi.alipay.com/gateway.do/"])
def test_v3_refuses_a_gateway_do_url(make_env: Callable[[Mode], dict[str, str]], url: str) -> None:
    env = make_env(Mode("v3", cert=False, aes=False)) | {"ALIPAY_GATEWAY_URL": url}
    assert _config_error(env) == (
        "ALIPAY_GATEWAY_URL: with ALIPAY_PROTOCOL=v3, give the base URL (e.g. https://openapi.alipay.com)"
    )


@pytest.mark.parametrize(
    "url", ["https://openapi.alipay.com", "https://openapi.alipay.com/", "http://10.0.0.1:8080/alipay/"]
)
def test_v3_base_urls(make_env: Callable[[Mode], dict[str, str]], url: str) -> None:
    env = make_env(Mode("v3", cert=True, aes=True)) | {"ALIPAY_GATEWAY_URL": url}
    settings = Settings.from_environ(env)
    assert (settings.protocol, settings.gateway_url) == ("v3", url)


def test_v3_example_in_the_url_error(make_env: Callable[[Mode], dict[str, str]]) -> None:
    env = make_env(Mode("v3", cert=False, aes=False)) | {"ALIPAY_GATEWAY_URL": "openapi.alipay.com"}
    assert _config_error(env) == "ALIPAY_GATEWAY_URL: expected an http(s) URL such as https://openapi.alipay.com"


def test_demo_ignores_certificate_and_aes_variables() -> None:
    # --demo brings its own keys; what the environment says about real ones does not apply to it.
    settings = Settings.from_environ(
        {"ALIPAY_PROTOCOL": "v3", "ALIPAY_APP_CERT_FILE": "/nowhere", "ALIPAY_ENCRYPT_KEY": "x"}, demo=True
    )
    assert (settings.protocol, settings.credentials, settings.demo) == ("v3", None, True)


def test_uvicorn_factory_stops_with_one_line(make_env: Callable[[Mode], dict[str, str]]) -> None:
    env = make_env(Mode("v2", cert=True, aes=False))
    env["ALIPAY_ROOT_CERT_FILE"] = ""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ALIPAY_", "GRAPH_"))}
    code = "from graph.app import from_environ; from_environ()"
    result = subprocess.run(
        [sys.executable, "-c", code], env=base | env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "alipay-graph: certificate mode needs ALIPAY_APP_CERT_FILE, ALIPAY_PUBLIC_CERT_FILE, ALIPAY_ROOT_CERT_FILE; "
        "not set: ALIPAY_ROOT_CERT_FILE"
    ]
