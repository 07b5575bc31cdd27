"""The sandbox gateway in certificate mode, with AES, and on its v3 side, driven by hand-built requests."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from graph.gateway import aes
from graph.gateway.keys import load_private_key, load_public_key
from graph.gateway.signing import SignType, gateway_timestamp, sign, sign_params, verify
from graph.sandbox import DemoCredentials, Fault, SandboxGateway, generate_credentials
from graph.sandbox.certs import CertChain, issue_cert_chain
from graph.sandbox.checks import App
from tests.test_sandbox import BIZ, TOKEN, post, split

NOW = datetime(2026, 11, 28, 16, 41, 29, tzinfo=UTC)
KEY_APP, CERT_APP, BARE_APP = "2021000000000001", "2021000000000002", "2021000000000003"
V3_PATH = "/v3/alipay/open/mini/version/detail/query"


@pytest.fixture(scope="module")
def creds() -> DemoCredentials:
    return generate_credentials()


@pytest.fixture(scope="module")
def app_key(creds: DemoCredentials) -> rsa.RSAPrivateKey:
    return load_private_key(creds.app_private_key_pem, "app key")


@pytest.fixture(scope="module")
def alipay_key(creds: DemoCredentials) -> rsa.RSAPublicKey:
    return load_public_key(creds.alipay_public_key_pem, "alipay key")


@pytest.fixture(scope="module")
def chain(creds: DemoCredentials) -> CertChain:
    return issue_cert_chain(CERT_APP, creds.app_public_key, creds.alipay_private_key.public_key(), now=NOW)


@pytest.fixture(scope="module")
def aes_key() -> bytes:
    return os.urandom(16)


@pytest.fixture
def gateway(creds: DemoCredentials, chain: CertChain, aes_key: bytes) -> SandboxGateway:
    return SandboxGateway(
        alipay_private_key=creds.alipay_private_key,
        apps={
            KEY_APP: App(creds.app_public_key, encrypt_key=aes_key),
            CERT_APP: App(creds.app_public_key, app_cert_sn=chain.app_cert_sn, encrypt_key=aes_key),
            BARE_APP: creds.app_public_key,  # public-key mode, no AES key
        },
        auth_tokens=[TOKEN],
        clock=lambda: NOW,
        alipay_cert_sn=chain.alipay_cert_sn,
        alipay_root_cert_sn=chain.alipay_root_cert_sn,
    )


@pytest.fixture
async def client(gateway: SandboxGateway) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=gateway.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
        yield http


def v2_params(
    app_key: rsa.RSAPrivateKey,
    app_id: str,
    biz: Mapping[str, Any] = BIZ,
    *,
    encrypt_with: bytes | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Signed v2 params, built by hand; ``encrypt_with`` encrypts biz_content first, as a client must."""
    biz_content = json.dumps(biz, ensure_ascii=False)
    params = {
        "app_id": app_id,
        "method": "alipay.open.mini.version.detail.query",
        "format": "json",
        "charset": "utf-8",
        "sign_type": "RSA2",
        "timestamp": gateway_timestamp(NOW),
        "version": "1.0",
        "biz_content": biz_content if encrypt_with is None else aes.encrypt(biz_content, encrypt_with),
        **({"encrypt_type": "AES"} if encrypt_with is not None else {}),
        **(extra or {}),
    }
    params["sign"] = sign_params(params, app_key, SignType.RSA2)
    return params


def cert_params(chain: CertChain, **changes: str) -> dict[str, str]:
    return {"app_cert_sn": chain.app_cert_sn, "alipay_root_cert_sn": chain.alipay_root_cert_sn, **changes}


def refusal(response: httpx.Response, alipay_key: rsa.RSAPublicKey, code: str, sub_code: str) -> dict[str, Any]:
    answer = split(response.text.replace(_cert_sn_member(response.text), ""))
    assert answer.sign is not None  # refusals to a known app are signed, cert mode or not
    assert verify(answer.node_text.encode(), answer.sign, alipay_key, SignType.RSA2)
    node = answer.node
    assert (node["code"], node["sub_code"]) == (code, sub_code)
    assert node["sub_msg"]
    return node


def _cert_sn_member(body: str) -> str:
    at = body.find(',"alipay_cert_sn":"')
    return "" if at < 0 else body[at : at + len(',"alipay_cert_sn":"') + 33]


# --------------------------------------------------------------------------------------- v2, certificate mode


async def test_cert_mode_answer_names_alipays_certificate(
    client: httpx.AsyncClient,
    gateway: SandboxGateway,
    app_key: rsa.RSAPrivateKey,
    alipay_key: rsa.RSAPublicKey,
    chain: CertChain,
) -> None:
    response = await post(client, v2_params(app_key, CERT_APP, extra=cert_params(chain)))
    body = response.text
    # {"<node>":{...},"alipay_cert_sn":"...","sign":"..."}: the SN sits outside the signed node.
    assert f',"alipay_cert_sn":"{chain.alipay_cert_sn}","sign":"' in body
    answer = split(body.replace(_cert_sn_member(body), ""))
    assert answer.sign is not None
    assert verify(answer.node_text.encode(), answer.sign, alipay_key, SignType.RSA2)
    assert answer.node["code"] == "10000"
    [call] = gateway.calls
    assert (call.app_cert_sn, call.alipay_root_cert_sn) == (chain.app_cert_sn, chain.alipay_root_cert_sn)


@pytest.mark.parametrize(
    ("changes", "code", "sub_code"),
    [
        ({"app_cert_sn": ""}, "40001", "isv.missing-app-cert-sn"),
        ({"app_cert_sn": "0" * 32}, "40002", "isv.invalid-app-cert-sn"),
        ({"alipay_root_cert_sn": ""}, "40001", "isv.missing-alipay-root-cert-sn"),
        ({"alipay_root_cert_sn": "0" * 32}, "40002", "isv.invalid-alipay-root-cert-sn"),
    ],
)
async def test_cert_mode_checks_the_sns(
    client: httpx.AsyncClient,
    app_key: rsa.RSAPrivateKey,
    alipay_key: rsa.RSAPublicKey,
    chain: CertChain,
    changes: dict[str, str],
    code: str,
    sub_code: str,
) -> None:
    response = await post(client, v2_params(app_key, CERT_APP, extra=cert_params(chain, **changes)))
    refusal(response, alipay_key, code, sub_code)


async def test_public_key_apps_ignore_certificate_params(
    client: httpx.AsyncClient, app_key: rsa.RSAPrivateKey, chain: CertChain
) -> None:
    response = await post(client, v2_params(app_key, KEY_APP, extra={"app_cert_sn": "whatever"}))
    assert "alipay_cert_sn" not in response.text
    assert split(response.text).node["code"] == "10000"


def test_cert_mode_apps_need_alipays_sns(creds: DemoCredentials) -> None:
    with pytest.raises(ValueError, match="alipay_cert_sn and alipay_root_cert_sn"):
        SandboxGateway(alipay_private_key=creds.alipay_private_key, apps={CERT_APP: App(creds.app_public_key, "sn")})


# ------------------------------------------------------------------------------------------------ v2, AES


async def test_aes_request_gets_a_quoted_ciphertext_signed_as_it_stands(
    client: httpx.AsyncClient,
    gateway: SandboxGateway,
    app_key: rsa.RSAPrivateKey,
    alipay_key: rsa.RSAPublicKey,
    aes_key: bytes,
) -> None:
    response = await post(client, v2_params(app_key, KEY_APP, encrypt_with=aes_key))
    answer = split(response.text)
    assert answer.node_text.startswith('"')
    assert answer.node_text.endswith('"')
    assert answer.sign is not None
    assert verify(answer.node_text.encode(), answer.sign, alipay_key, SignType.RSA2)  # quotes included
    node = json.loads(aes.decrypt(json.loads(answer.node_text), aes_key))
    assert (node["code"], node["app_version"]) == ("10000", "0.0.1")
    assert gateway.calls[0].encrypted


async def test_aes_business_failures_are_encrypted_and_refusals_are_not(
    client: httpx.AsyncClient, app_key: rsa.RSAPrivateKey, aes_key: bytes
) -> None:
    business = split(
        (await post(client, v2_params(app_key, KEY_APP, {"app_version": "9.9.9"}, encrypt_with=aes_key))).text
    )
    assert json.loads(aes.decrypt(json.loads(business.node_text), aes_key))["sub_code"] == "VERSION_NOT_EXIST"
    params = v2_params(app_key, KEY_APP, encrypt_with=aes_key)
    params["sign"] = params["sign"][::-1]
    refused = split((await post(client, params)).text)
    assert refused.node["sub_code"] == "isv.invalid-signature"


@pytest.mark.parametrize(
    ("app_id", "tweak", "sub_code"),
    [
        (KEY_APP, {"encrypt_type": "DES"}, "isv.decryption-error-not-valid-encrypt-type"),
        (BARE_APP, {}, "isv.decryption-error-not-valid-encrypt-key"),
        (KEY_APP, {"biz_content": "bm90IGEgY2lwaGVydGV4dA=="}, "isv.decryption-error-unknown"),
    ],
)
async def test_aes_refusals(
    client: httpx.AsyncClient,
    app_key: rsa.RSAPrivateKey,
    alipay_key: rsa.RSAPublicKey,
    aes_key: bytes,
    app_id: str,
    tweak: dict[str, str],
    sub_code: str,
) -> None:
    params = v2_params(app_key, app_id, encrypt_with=aes_key)
    params.update(tweak)
    params["sign"] = sign_params(params, app_key, SignType.RSA2)  # genuine: the decryption itself fails
    refusal(await post(client, params), alipay_key, "40002", sub_code)


async def test_aes_faults_are_encrypted_too(
    client: httpx.AsyncClient, gateway: SandboxGateway, app_key: rsa.RSAPrivateKey, aes_key: bytes
) -> None:
    gateway.fail_next(Fault.TAMPERED)
    tampered = split((await post(client, v2_params(app_key, KEY_APP, encrypt_with=aes_key))).text)
    assert tampered.node_text.startswith('"')
    gateway.fail_next(Fault.WRONG_ENCRYPT_KEY)
    other = split((await post(client, v2_params(app_key, KEY_APP, encrypt_with=aes_key))).text)
    with pytest.raises(aes.DecryptError):
        aes.decrypt(json.loads(other.node_text), aes_key)


# --------------------------------------------------------------------------------------------------- v3


def v3_request(
    app_key: rsa.RSAPrivateKey,
    app_id: str = KEY_APP,
    *,
    query: str = "app_version=0.0.1&bundle_id=com.alipay.alipaywallet",
    timestamp: datetime = NOW,
    app_cert_sn: str | None = None,
    token: str | None = None,
    signed_path: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[str, dict[str, str]]:
    """(path?query, headers) of a v3 request built by hand from the protocol's description."""
    path_query = f"{V3_PATH}?{query}"
    cert = f",app_cert_sn={app_cert_sn}" if app_cert_sn else ""
    auth = f"app_id={app_id}{cert},nonce={uuid.uuid4()},timestamp={int(timestamp.timestamp() * 1000)}"
    content = f"{auth}\nGET\n{signed_path or path_query}\n\n" + (f"{token}\n" if token else "")
    signature = sign(content.encode(), app_key, SignType.RSA2)
    out = {"Authorization": f"ALIPAY-SHA256withRSA {auth},sign={signature}", **(headers or {})}
    if token:
        out["alipay-app-auth-token"] = token
    return path_query, out


def v3_verified(response: httpx.Response, alipay_key: rsa.RSAPublicKey) -> str:
    headers = response.headers
    content = f"{headers['alipay-timestamp']}\n{headers['alipay-nonce']}\n{response.text}\n"
    assert verify(content.encode(), headers["alipay-signature"], alipay_key, SignType.RSA2)
    return response.text


async def test_v3_success(
    client: httpx.AsyncClient, gateway: SandboxGateway, app_key: rsa.RSAPrivateKey, alipay_key: rsa.RSAPublicKey
) -> None:
    path, headers = v3_request(app_key, token=TOKEN)
    response = await client.get(path, headers=headers)
    assert response.status_code == 200
    body = json.loads(v3_verified(response, alipay_key))
    assert "code" not in body
    assert body["app_version"] == "0.0.1"
    assert response.headers["alipay-timestamp"] == str(int(NOW.timestamp() * 1000))
    assert "alipay-sn" not in response.headers  # public-key mode
    [call] = gateway.calls
    assert (call.protocol, call.outcome, call.has_app_auth_token, call.sign_type) == (
        "v3",
        "ok",
        True,
        "ALIPAY-SHA256withRSA",
    )


async def test_v3_cert_mode_and_aes(
    client: httpx.AsyncClient,
    app_key: rsa.RSAPrivateKey,
    alipay_key: rsa.RSAPublicKey,
    chain: CertChain,
    aes_key: bytes,
) -> None:
    path, headers = v3_request(
        app_key,
        CERT_APP,
        app_cert_sn=chain.app_cert_sn,
        headers={"alipay-root-cert-sn": chain.alipay_root_cert_sn, "alipay-encrypt-type": "AES"},
    )
    response = await client.get(path, headers=headers)
    assert response.status_code == 200
    assert response.headers["alipay-sn"] == chain.alipay_cert_sn
    ciphertext = v3_verified(response, alipay_key)  # the signature covers the ciphertext
    assert json.loads(aes.decrypt(ciphertext, aes_key))["app_version"] == "0.0.1"
    # Errors stay plain JSON, signed.
    path, headers = v3_request(
        app_key,
        CERT_APP,
        query="app_version=9.9.9",
        app_cert_sn=chain.app_cert_sn,
        headers={"alipay-root-cert-sn": chain.alipay_root_cert_sn, "alipay-encrypt-type": "AES"},
    )
    response = await client.get(path, headers=headers)
    assert response.status_code == 400
    assert json.loads(v3_verified(response, alipay_key)) == {"code": "VERSION_NOT_EXIST", "message": "版本不存在"}


async def test_v3_bundle_id_defaults_and_blank_version(
    client: httpx.AsyncClient, gateway: SandboxGateway, app_key: rsa.RSAPrivateKey
) -> None:
    path, headers = v3_request(app_key, query="app_version=0.0.2")
    assert (await client.get(path, headers=headers)).status_code == 200
    assert gateway.calls[-1].bundle_id == "com.alipay.alipaywallet"
    path, headers = v3_request(app_key, query="app_version=%20")
    response = await client.get(path, headers=headers)
    assert (response.status_code, response.json()["code"]) == (400, "APP_VERSION_IS_BLANK")


def _expect(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status
    body = response.json()
    assert body["code"] == code
    assert body["message"]


@pytest.mark.parametrize(
    ("authorization", "status", "code", "signed"),
    [
        (None, 401, "isv.missing-signature", False),
        ("Bearer abc", 401, "isv.invalid-signature-type", False),
        ("ALIPAY-SHA256withRSA app_id=2021000000000001,nonce=n,timestamp=1", 401, "isv.missing-signature", False),
        ("ALIPAY-SHA256withRSA nonce=n,timestamp=1,sign=c2ln", 400, "isv.missing-app-id", False),
        ("ALIPAY-SHA256withRSA app_id=2021000000000001,nonce=n,sign=c2ln", 400, "isv.missing-timestamp", True),
        ("ALIPAY-SHA256withRSA app_id=2021000000000001,timestamp=1,sign=c2ln", 400, "isv.missing-nonce", True),
        (
            "ALIPAY-SHA256withRSA app_id=2021999999999999,nonce=n,timestamp=1,sign=c2ln",
            401,
            "isv.invalid-app-id",
            False,
        ),
    ],
)
async def test_v3_unreadable_authorization(
    client: httpx.AsyncClient,
    gateway: SandboxGateway,
    alipay_key: rsa.RSAPublicKey,
    authorization: str | None,
    status: int,
    code: str,
    signed: bool,
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client.get(f"{V3_PATH}?app_version=0.0.1", headers=headers)
    _expect(response, status, code)
    # Signed when the gateway can tell which app is asking; unsigned when it cannot.
    if signed:
        v3_verified(response, alipay_key)
    else:
        assert "alipay-signature" not in response.headers
    assert gateway.calls[-1].outcome == code.split(".", 1)[1]


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"timestamp": NOW - timedelta(hours=8)}, 400, "isv.invalid-timestamp"),
        ({"signed_path": f"{V3_PATH}?app_version=0.0.2"}, 401, "isv.invalid-signature"),
        ({"token": "202611BBunknown"}, 401, "aop.invalid-app-auth-token"),
        ({"headers": {"alipay-encrypt-type": "DES"}}, 400, "isv.decryption-error-not-valid-encrypt-type"),
    ],
)
async def test_v3_refusals_are_signed(
    client: httpx.AsyncClient,
    app_key: rsa.RSAPrivateKey,
    alipay_key: rsa.RSAPublicKey,
    changes: dict[str, Any],
    status: int,
    code: str,
) -> None:
    path, headers = v3_request(app_key, **changes)
    response = await client.get(path, headers=headers)
    _expect(response, status, code)
    v3_verified(response, alipay_key)


async def test_v3_malformed_timestamp(client: httpx.AsyncClient, app_key: rsa.RSAPrivateKey) -> None:
    path, headers = v3_request(app_key)
    headers["Authorization"] = headers["Authorization"].replace(",timestamp=", ",timestamp=x")
    _expect(await client.get(path, headers=headers), 400, "isv.invalid-timestamp")


async def test_v3_aes_needs_the_apps_key(client: httpx.AsyncClient, app_key: rsa.RSAPrivateKey) -> None:
    path, headers = v3_request(app_key, BARE_APP, headers={"alipay-encrypt-type": "AES"})
    _expect(await client.get(path, headers=headers), 400, "isv.decryption-error-not-valid-encrypt-key")


@pytest.mark.parametrize(
    ("app_sn", "root_sn", "code"),
    [
        (None, None, "isv.missing-app-cert-sn"),
        ("0" * 32, None, "isv.invalid-app-cert-sn"),
        ("right", None, "isv.missing-alipay-root-cert-sn"),
        ("right", "0" * 32, "isv.invalid-alipay-root-cert-sn"),
    ],
)
async def test_v3_cert_mode_checks_the_sns(
    client: httpx.AsyncClient,
    app_key: rsa.RSAPrivateKey,
    alipay_key: rsa.RSAPublicKey,
    chain: CertChain,
    app_sn: str | None,
    root_sn: str | None,
    code: str,
) -> None:
    extra = {} if root_sn is None else {"alipay-root-cert-sn": root_sn}
    app_cert_sn = chain.app_cert_sn if app_sn == "right" else app_sn
    path, headers = v3_request(app_key, CERT_APP, app_cert_sn=app_cert_sn, headers=extra)
    response = await client.get(path, headers=headers)
    _expect(response, 400, code)
    assert response.headers["alipay-sn"] == chain.alipay_cert_sn
    v3_verified(response, alipay_key)


async def test_v3_takes_get_only(client: httpx.AsyncClient) -> None:
    assert (await client.post(f"{V3_PATH}?app_version=0.0.1")).status_code == 405


async def test_v3_query_is_signed_as_received(client: httpx.AsyncClient, app_key: rsa.RSAPrivateKey) -> None:
    # A client that signs the decoded query but sends it encoded fails: the gateway verifies the raw target.
    encoded = "app_version=" + quote("0.0.1 beta", safe="")
    path, headers = v3_request(app_key, query=encoded, signed_path=f"{V3_PATH}?app_version=0.0.1 beta")
    _expect(await client.get(path, headers=headers), 401, "isv.invalid-signature")
    path, headers = v3_request(app_key, query=encoded)
    _expect(await client.get(path, headers=headers), 400, "VERSION_NOT_EXIST")


async def test_v3_fault_rendering(
    client: httpx.AsyncClient, gateway: SandboxGateway, app_key: rsa.RSAPrivateKey, alipay_key: rsa.RSAPublicKey
) -> None:
    gateway.fail_next(Fault.BUSY)
    gateway.fail_next(Fault.CALL_LIMITED)
    gateway.fail_next(Fault.business_error("APPLICATION_TYPE_NOT_MINIAPP"))
    gateway.fail_next(Fault.HTTP_502)
    gateway.fail_next(Fault.GARBAGE_BODY)
    seen = []
    for _ in range(5):
        path, headers = v3_request(app_key)
        response = await client.get(path, headers=headers)
        seen.append((response.status_code, response.headers["content-type"].split(";")[0]))
    assert seen == [
        (503, "application/json"),
        (429, "application/json"),
        (400, "application/json"),
        (502, "text/html"),
        (200, "text/html"),
    ]
    assert [c.outcome for c in gateway.calls] == ["BUSY", "CALL_LIMITED", "BUSINESS_ERROR", "HTTP_502", "GARBAGE_BODY"]
