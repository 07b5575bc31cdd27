"""Every way of talking to Alipay, end to end: v2 and v3, each in public-key or certificate mode, each with
or without AES. The v2 client in certificate and AES mode against the sandbox over HTTP; then the service
configured from the environment (files on disk, as deployed), served over HTTP, asked through GraphQL."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest
from Crypto.Cipher import AES
from Crypto.Util.Padding import unpad

from graph.app import create_app
from graph.config import Settings
from graph.gateway import aes
from graph.gateway.client import AlipayClient
from graph.gateway.errors import BusinessError, GatewayProtocolError, GatewayUnavailable, SignatureError
from graph.gateway.signing import SignType, sign_content, verify
from graph.gateway.v3 import AlipayV3Client
from graph.sandbox import DemoCredentials, Fault, SandboxGateway
from graph.sandbox.certs import CertChain
from graph.sandbox.wire import METHOD_NODE, Seal
from tests.conftest import MERCHANT_TOKEN, NO_WAIT
from tests.modefixtures import (
    ALL_MODES,
    MODE_IDS,
    Mode,
    _modes_gateway,
    aes_key,
    cert_chain,
    credentials_for,
    env_for,
    modes_sandbox,
    modes_url,
)
from tests.servers import serve
from tests.test_app import post
from tests.test_cli import run

__all__ = ["_modes_gateway", "aes_key", "cert_chain", "modes_sandbox", "modes_url"]  # fixtures used by name

V2_MODES = [mode for mode in ALL_MODES if mode.protocol == "v2"]
CERT_AES = Mode("v2", cert=True, aes=True)
AES_ONLY = Mode("v2", cert=False, aes=True)
CERT_ONLY = Mode("v2", cert=True, aes=False)
PLAIN = Mode("v2", cert=False, aes=False)

ClientFactory = Callable[..., AlipayClient]


@pytest.fixture
async def make_client(
    modes_url: str, demo_credentials: DemoCredentials, cert_chain: CertChain, aes_key: bytes
) -> AsyncIterator[ClientFactory]:
    made: list[AlipayClient] = []

    def make(mode: Mode, **kwargs: object) -> AlipayClient:
        options: dict[str, object] = {"gateway_url": f"{modes_url}/gateway.do", "backoff": NO_WAIT, "timeout_s": 2.0}
        options.update(kwargs)
        client = AlipayClient(credentials_for(mode, demo_credentials, cert_chain, aes_key), **options)  # type: ignore[arg-type]
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


# ------------------------------------------------------------------------------ the v2 client, every mode


@pytest.mark.parametrize("mode", V2_MODES, ids=[mode.id for mode in V2_MODES])
async def test_v2_client_in_every_mode(
    make_client: ClientFactory, modes_sandbox: SandboxGateway, cert_chain: CertChain, mode: Mode
) -> None:
    node = await make_client(mode).version_detail("0.0.1", "com.alipay.alipaywallet", MERCHANT_TOKEN)
    assert (node["code"], node["app_version"]) == ("10000", "0.0.1")
    assert node["app_logo"].startswith("https://")
    [call] = modes_sandbox.calls
    assert (call.protocol, call.outcome, call.app_id, call.encrypted, call.has_app_auth_token) == (
        "v2",
        "ok",
        mode.app_id,
        mode.aes,
        True,
    )
    expected_sns = (cert_chain.app_cert_sn, cert_chain.alipay_root_cert_sn) if mode.cert else (None, None)
    assert (call.app_cert_sn, call.alipay_root_cert_sn) == expected_sns


@pytest.mark.parametrize(
    ("fault", "error", "mode"),
    [
        (Fault.WRONG_CERT_SN, SignatureError, CERT_ONLY),
        (Fault.WRONG_CERT_SN, SignatureError, CERT_AES),
        (Fault.WRONG_ENCRYPT_KEY, GatewayProtocolError, AES_ONLY),
        (Fault.WRONG_ENCRYPT_KEY, GatewayProtocolError, PLAIN),  # an encrypted node nobody asked for
        (Fault.BAD_SIGNATURE, SignatureError, AES_ONLY),
        (Fault.TAMPERED, SignatureError, CERT_AES),
        (Fault.WRONG_KEY, SignatureError, CERT_AES),
        (Fault.DUPLICATE_NODE, SignatureError, AES_ONLY),
        (Fault.UNSIGNED_SUCCESS, SignatureError, AES_ONLY),  # an unsigned ciphertext is never opened
        (Fault.BUSINESS_ERROR, BusinessError, CERT_AES),
        (Fault.UNSIGNED_ERROR, BusinessError, CERT_AES),
    ],
    ids=lambda value: value.id if isinstance(value, Mode) else getattr(value, "name", None),
)
async def test_v2_faults_in_cert_and_aes_modes(
    make_client: ClientFactory, modes_sandbox: SandboxGateway, fault: Fault, error: type[Exception], mode: Mode
) -> None:
    modes_sandbox.fail_next(fault, times=5)
    with pytest.raises(error):
        await make_client(mode, retries=2).version_detail("0.0.1", "com.alipay.alipaywallet")
    assert len(modes_sandbox.calls) == 1


async def test_v2_rotated_alipay_certificate_is_named(
    make_client: ClientFactory, modes_sandbox: SandboxGateway
) -> None:
    modes_sandbox.fail_next(Fault.WRONG_CERT_SN)
    with pytest.raises(SignatureError, match="names Alipay certificate 0123456789abcdef0123456789abcdef, not the"):
        await make_client(CERT_ONLY).version_detail("0.0.1", "com.alipay.alipaywallet")
    modes_sandbox.fail_next(Fault.WRONG_CERT_SN)  # public-key mode does not read alipay_cert_sn
    assert (await make_client(PLAIN).version_detail("0.0.1", "com.alipay.alipaywallet"))["code"] == "10000"


async def test_v2_encrypted_business_errors_and_retries(
    make_client: ClientFactory, modes_sandbox: SandboxGateway
) -> None:
    client = make_client(CERT_AES, retries=1)
    with pytest.raises(BusinessError) as caught:
        await client.version_detail("9.9.9", "com.alipay.alipaywallet")
    assert (caught.value.code, caught.value.sub_code, caught.value.signed) == ("40004", "VERSION_NOT_EXIST", True)
    modes_sandbox.fail_next(Fault.SYSTEM_ERROR, times=2)  # encrypted too (a 40004), retried, then spent
    with pytest.raises(GatewayUnavailable):
        await client.version_detail("0.0.1", "com.alipay.alipaywallet")
    assert [c.outcome for c in modes_sandbox.calls] == ["business_error", "SYSTEM_ERROR", "SYSTEM_ERROR"]


async def test_v2_wrong_sign_in_cert_mode_points_at_the_certificate(
    make_client: ClientFactory, modes_sandbox: SandboxGateway
) -> None:
    modes_sandbox.fail_next(Fault.WRONG_KEY)
    with pytest.raises(SignatureError, match="ALIPAY_PUBLIC_CERT_FILE is Alipay's certificate"):
        await make_client(CERT_ONLY).version_detail("0.0.1", "com.alipay.alipaywallet")


async def test_v2_aes_request_on_the_wire(
    demo_credentials: DemoCredentials, cert_chain: CertChain, aes_key: bytes
) -> None:
    """Encrypt, then sign: checked with an independent AES (pycryptodome) and a hand-built sign string."""
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503)

    creds = credentials_for(CERT_AES, demo_credentials, cert_chain, aes_key)
    client = AlipayClient(
        creds, gateway_url="https://gw.test/gateway.do", transport=httpx.MockTransport(record), retries=0
    )
    try:
        with pytest.raises(Exception, match="503"):
            await client.version_detail("0.0.1", "com.amap.app")
    finally:
        await client.aclose()
    [request] = seen
    params = dict(request.url.params) | dict(parse_qsl(request.content.decode()))
    assert (params["encrypt_type"], params["app_cert_sn"], params["alipay_root_cert_sn"]) == (
        "AES",
        cert_chain.app_cert_sn,
        cert_chain.alipay_root_cert_sn,
    )
    cipher = AES.new(aes_key, AES.MODE_CBC, iv=bytes(16))
    plain = unpad(cipher.decrypt(base64.b64decode(params["biz_content"])), AES.block_size).decode()
    assert json.loads(plain) == {"app_version": "0.0.1", "bundle_id": "com.amap.app"}
    # The signature covers the ciphertext, encrypt_type and the certificate SNs.
    signed = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign")
    assert signed == sign_content(params)
    assert verify(signed.encode(), params["sign"], demo_credentials.app_public_key, SignType.RSA2)


@pytest.mark.parametrize(
    ("plaintext", "message"),
    [("not json", "decrypts to something that is not JSON"), ("[1, 2]", "not an object")],
)
async def test_v2_ciphertexts_that_do_not_hold_a_node(
    demo_credentials: DemoCredentials, cert_chain: CertChain, aes_key: bytes, plaintext: str, message: str
) -> None:
    text = '"' + aes.encrypt(plaintext, aes_key) + '"'
    seal = Seal(demo_credentials.alipay_private_key)
    body = f'{{"{METHOD_NODE}":{text},"sign":"{seal.sign(text)}"}}'
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body.encode()))
    creds = credentials_for(AES_ONLY, demo_credentials, cert_chain, aes_key)
    client = AlipayClient(creds, gateway_url="https://gw.test/gateway.do", transport=transport)
    try:
        with pytest.raises(GatewayProtocolError, match=message):
            await client.version_detail("0.0.1", "com.amap.app")
    finally:
        await client.aclose()


# ------------------------------------------------------------ the service, configured as deployed, 8 modes

EVERYWHERE = """
query($v: String!, $ids: [String!]) {
  one: miniAppVersion(appVersion: $v) { appVersion bundleId appName status gmtCreate }
  all: miniAppVersions(appVersion: $v, bundleIds: $ids) {
    __typename
    ... on MiniAppVersion { bundleId status }
    ... on MiniAppVersionError { bundleId code subCode retryable }
  }
}
"""
STATUS = 'query($v: String!) { miniAppVersion(appVersion: $v, bundleId: "com.amap.app") { status } }'


@pytest.fixture
def mode_env(
    tmp_path: Path, demo_credentials: DemoCredentials, cert_chain: CertChain, aes_key: bytes, modes_url: str
) -> Callable[[Mode], dict[str, str]]:
    def make(mode: Mode) -> dict[str, str]:
        directory = tmp_path / mode.id.replace("+", "-")
        directory.mkdir(exist_ok=True)
        return env_for(mode, directory, demo_credentials, cert_chain, aes_key, modes_url)

    return make


@pytest.mark.parametrize("mode", ALL_MODES, ids=MODE_IDS)
async def test_graphql_in_every_mode(
    mode_env: Callable[[Mode], dict[str, str]], modes_sandbox: SandboxGateway, cert_chain: CertChain, mode: Mode
) -> None:
    settings = Settings.from_environ(mode_env(mode))
    assert settings.protocol == mode.protocol
    assert settings.credentials is not None
    assert (settings.credentials.certs is not None, settings.credentials.encrypt_key is not None) == (
        mode.cert,
        mode.aes,
    )
    with serve(create_app(settings), lifespan="on") as url:
        ids = ["com.alipay.alipaywallet", "com.amap.app", "com.example.nowhere"]
        response = await post(
            url, EVERYWHERE, {"v": "0.0.1", "ids": ids}, **{"X-Alipay-App-Auth-Token": MERCHANT_TOKEN}
        )
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:
            ready = await http.get("/readyz")
    assert ready.status_code == 200
    body = response.json()
    assert "errors" not in body, body
    one = body["data"]["one"]
    assert (one["appVersion"], one["bundleId"]) == ("0.0.1", "com.alipay.alipaywallet")
    assert one["gmtCreate"].endswith("+08:00")
    items = body["data"]["all"]
    assert [item["__typename"] for item in items] == ["MiniAppVersion", "MiniAppVersion", "MiniAppVersionError"]
    assert (items[2]["code"], items[2]["subCode"], items[2]["retryable"]) == (
        "ALIPAY_BUSINESS_ERROR",
        "BUNDLE_ID_NOT_EXIST",
        False,
    )
    calls = modes_sandbox.calls
    assert len(calls) == 3  # the alias and the list item for the same client share one call
    for call in calls:
        assert (call.protocol, call.app_id, call.encrypted, call.has_app_auth_token) == (
            mode.protocol,
            mode.app_id,
            mode.aes,
            True,
        )
        assert call.app_cert_sn == (cert_chain.app_cert_sn if mode.cert else None)
        assert call.alipay_root_cert_sn == (cert_chain.alipay_root_cert_sn if mode.cert else None)


@pytest.mark.parametrize(
    ("mode", "fault", "code", "alipay"),
    [
        (Mode("v3", False, False), None, "ALIPAY_BUSINESS_ERROR", {"code": "400", "subCode": "VERSION_NOT_EXIST"}),
        (Mode("v3", True, True), Fault.BUSY, "ALIPAY_UNAVAILABLE", {"code": "503", "subCode": "isp.unknow-error"}),
        (Mode("v3", True, False), Fault.CALL_LIMITED, "ALIPAY_UNAVAILABLE", {"code": "429"}),
        (Mode("v3", True, False), Fault.WRONG_CERT_SN, "ALIPAY_BAD_SIGNATURE", None),
        (Mode("v3", False, True), Fault.WRONG_ENCRYPT_KEY, "ALIPAY_UNAVAILABLE", None),
        (Mode("v2", True, False), Fault.WRONG_CERT_SN, "ALIPAY_BAD_SIGNATURE", None),
        (Mode("v2", False, True), Fault.TAMPERED, "ALIPAY_BAD_SIGNATURE", None),
        (Mode("v2", True, True), Fault.CALL_LIMITED, "ALIPAY_UNAVAILABLE", {"code": "40005"}),
    ],
    ids=lambda value: value.id if isinstance(value, Mode) else None,
)
async def test_graphql_errors_in_the_new_modes(
    mode_env: Callable[[Mode], dict[str, str]],
    modes_sandbox: SandboxGateway,
    mode: Mode,
    fault: Fault | None,
    code: str,
    alipay: dict[str, str] | None,
) -> None:
    settings = Settings.from_environ(mode_env(mode) | {"ALIPAY_RETRIES": "0"})
    if fault is not None:
        modes_sandbox.fail_next(fault, times=3)
    version = "9.9.9" if fault is None else "0.0.1"
    with serve(create_app(settings), lifespan="on") as url:
        body = (await post(url, STATUS, {"v": version})).json()
    assert body["data"] == {"miniAppVersion": None}
    [error] = body["errors"]
    assert error["extensions"]["code"] == code
    if alipay is None:
        assert "alipay" not in error["extensions"]
    else:
        shown = error["extensions"]["alipay"]
        assert {key: shown[key] for key in alipay} == alipay
        assert set(shown) == {"code", "msg", "subCode", "subMsg"}
        if mode.protocol == "v3":
            assert shown["msg"] == shown["subMsg"]  # v3 has one message, shown in both


def test_cli_query_against_the_demo_speaks_v3() -> None:
    result = run(
        "query",
        "--demo",
        '{ miniAppVersion(appVersion: "0.0.1") { appVersion status } }',
        env={"ALIPAY_PROTOCOL": "v3"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["data"]["miniAppVersion"]["appVersion"] == "0.0.1"


async def test_demo_services_use_the_v3_client() -> None:
    from graph.app import open_services

    services = open_services(Settings.from_environ({"ALIPAY_PROTOCOL": "v3"}, demo=True))
    try:
        assert isinstance(services.client, AlipayV3Client)
        node = await services.client.version_detail("1.0.0", "com.alipay.iot.xpaas")
        assert node["app_version"] == "1.0.0"
        assert services.sandbox.calls[-1].protocol == "v3"
    finally:
        await services.aclose()
