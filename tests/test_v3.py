"""The v3 client against the sandbox gateway over real HTTP (every mode, every fault), and its wire format."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from urllib.parse import unquote

import httpx
import pytest

from graph.gateway.credentials import Credentials
from graph.gateway.errors import (
    BusinessError,
    GatewayProtocolError,
    GatewayTransportError,
    GatewayUnavailable,
    SignatureError,
)
from graph.gateway.signing import SignType, sign, verify
from graph.gateway.v3 import AlipayV3Client, request_sign_content, response_sign_content
from graph.sandbox import DemoCredentials, Fault, SandboxGateway
from graph.sandbox.certs import CertChain
from tests.conftest import MERCHANT_TOKEN, NO_WAIT
from tests.modefixtures import (
    ALL_MODES,
    Mode,
    _modes_gateway,
    aes_key,
    cert_chain,
    credentials_for,
    modes_sandbox,
    modes_url,
)

__all__ = ["_modes_gateway", "aes_key", "cert_chain", "modes_sandbox", "modes_url"]  # fixtures used by name

V3_MODES = [mode for mode in ALL_MODES if mode.protocol == "v3"]
PLAIN = Mode("v3", cert=False, aes=False)
AUTHORIZATION = re.compile(
    r"ALIPAY-SHA256withRSA app_id=(?P<app_id>[0-9]+)(,app_cert_sn=(?P<sn>[0-9a-f]{32}))?"
    r",nonce=(?P<nonce>[0-9a-f-]{36}),timestamp=(?P<ts>[0-9]{13}),sign=(?P<sign>[A-Za-z0-9+/=]+)"
)

ClientFactory = Callable[..., AlipayV3Client]


@pytest.fixture
async def make_client(
    modes_url: str, demo_credentials: DemoCredentials, cert_chain: CertChain, aes_key: bytes
) -> AsyncIterator[ClientFactory]:
    made: list[AlipayV3Client] = []

    def make(mode: Mode = PLAIN, **kwargs: object) -> AlipayV3Client:
        options: dict[str, object] = {"gateway_url": modes_url, "backoff": NO_WAIT, "timeout_s": 2.0}
        options.update(kwargs)
        creds = credentials_for(mode, demo_credentials, cert_chain, aes_key)
        client = AlipayV3Client(creds, **options)  # type: ignore[arg-type]
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


@pytest.mark.parametrize("mode", V3_MODES, ids=[mode.id for mode in V3_MODES])
async def test_success_in_every_v3_mode(
    make_client: ClientFactory, modes_sandbox: SandboxGateway, cert_chain: CertChain, mode: Mode
) -> None:
    node = await make_client(mode).version_detail("0.0.1", "com.alipay.alipaywallet")
    # v3 answers the bare fields: no code, no _response wrapper; "/" and Chinese text survive verification.
    assert "code" not in node
    assert node["app_version"] == "0.0.1"
    assert node["app_logo"].startswith("https://")
    assert any("\u4e00" <= ch <= "\u9fff" for ch in node["app_name"])
    [call] = modes_sandbox.calls
    assert (call.protocol, call.outcome, call.app_id, call.encrypted) == ("v3", "ok", mode.app_id, mode.aes)
    expected_sns = (cert_chain.app_cert_sn, cert_chain.alipay_root_cert_sn) if mode.cert else (None, None)
    assert (call.app_cert_sn, call.alipay_root_cert_sn) == expected_sns


async def test_base_url_with_a_trailing_slash(make_client: ClientFactory, modes_url: str) -> None:
    node = await make_client(gateway_url=modes_url + "/").version_detail("0.1.0", "com.amap.app")
    assert node["app_version"] == "0.1.0"


async def test_app_auth_token_is_signed_and_checked(make_client: ClientFactory, modes_sandbox: SandboxGateway) -> None:
    client = make_client()
    await client.version_detail("0.0.1", "com.alipay.alipaywallet", MERCHANT_TOKEN)
    assert modes_sandbox.calls[-1].has_app_auth_token
    with pytest.raises(BusinessError) as caught:
        await client.version_detail("0.0.1", "com.alipay.alipaywallet", "202611BBunknown")
    assert (caught.value.code, caught.value.sub_code, caught.value.signed) == (
        "401",
        "aop.invalid-app-auth-token",
        True,
    )
    assert "202611BBunknown" not in str(caught.value) + repr(caught.value)


async def test_business_errors_map_to_the_same_fields(
    make_client: ClientFactory, modes_sandbox: SandboxGateway
) -> None:
    client = make_client()
    with pytest.raises(BusinessError) as caught:
        await client.version_detail("9.9.9", "com.alipay.alipaywallet")
    error = caught.value
    # v3 error: HTTP status as code, the answer's code as sub_code, its message as msg and sub_msg.
    assert (error.code, error.sub_code, error.msg, error.sub_msg) == (
        "400",
        "VERSION_NOT_EXIST",
        "版本不存在",
        "版本不存在",
    )
    with pytest.raises(BusinessError) as caught:
        await client.version_detail("0.0.1", "com.example.unknown")
    assert caught.value.sub_code == "BUNDLE_ID_NOT_EXIST"
    assert len(modes_sandbox.calls) == 2


@pytest.mark.parametrize(
    ("fault", "status", "sub_code"),
    [
        (Fault.BUSY, "503", "isp.unknow-error"),
        (Fault.SYSTEM_ERROR, "400", "SYSTEM_ERROR"),  # a 4xx, retried for its code
        (Fault.CALL_LIMITED, "429", "isv.app-call-limited"),
    ],
)
async def test_retryable_answers_are_retried(
    make_client: ClientFactory, modes_sandbox: SandboxGateway, fault: Fault, status: str, sub_code: str
) -> None:
    modes_sandbox.fail_next(fault, times=2)
    node = await make_client(retries=2).version_detail("0.0.1", "com.alipay.alipaywallet")
    assert node["app_version"] == "0.0.1"
    assert [c.outcome for c in modes_sandbox.calls] == [fault.name, fault.name, "ok"]
    modes_sandbox.reset()
    modes_sandbox.fail_next(fault, times=3)
    with pytest.raises(GatewayUnavailable) as caught:
        await make_client(retries=2).version_detail("0.0.1", "com.alipay.alipaywallet")
    assert (caught.value.code, caught.value.sub_code) == (status, sub_code)
    assert len(modes_sandbox.calls) == 3


async def test_every_attempt_is_signed_afresh(make_client: ClientFactory, modes_sandbox: SandboxGateway) -> None:
    modes_sandbox.fail_next(Fault.BUSY, times=2)
    await make_client(retries=2).version_detail("0.0.1", "com.alipay.alipaywallet")
    assert len({c.timestamp for c in modes_sandbox.calls}) >= 2  # ms timestamps, each with a new nonce


@pytest.mark.parametrize(
    ("fault", "error", "mode"),
    [
        (Fault.BUSINESS_ERROR, BusinessError, PLAIN),
        (Fault.BAD_SIGNATURE, SignatureError, PLAIN),
        (Fault.TAMPERED, SignatureError, PLAIN),
        (Fault.TAMPERED, SignatureError, Mode("v3", cert=False, aes=True)),
        (Fault.DUPLICATE_NODE, SignatureError, PLAIN),
        (Fault.UNSIGNED_SUCCESS, SignatureError, PLAIN),
        (Fault.WRONG_KEY, SignatureError, PLAIN),
        (Fault.WRONG_KEY, SignatureError, Mode("v3", cert=True, aes=True)),
        (Fault.TRUNCATED_JSON, SignatureError, PLAIN),
        (Fault.GARBAGE_BODY, GatewayProtocolError, PLAIN),
        (Fault.WRONG_CERT_SN, SignatureError, Mode("v3", cert=True, aes=False)),
        (Fault.WRONG_ENCRYPT_KEY, GatewayProtocolError, Mode("v3", cert=False, aes=True)),
        (Fault.WRONG_ENCRYPT_KEY, GatewayProtocolError, PLAIN),  # an encrypted body nobody asked for
    ],
    ids=lambda value: value.id if isinstance(value, Mode) else getattr(value, "name", None),
)
async def test_non_retryable_faults_fail_at_once(
    make_client: ClientFactory, modes_sandbox: SandboxGateway, fault: Fault, error: type[Exception], mode: Mode
) -> None:
    modes_sandbox.fail_next(fault, times=5)
    with pytest.raises(error):
        await make_client(mode, retries=2).version_detail("0.0.1", "com.alipay.alipaywallet")
    assert len(modes_sandbox.calls) == 1


async def test_a_rotated_alipay_certificate_is_named(make_client: ClientFactory, modes_sandbox: SandboxGateway) -> None:
    modes_sandbox.fail_next(Fault.WRONG_CERT_SN)
    with pytest.raises(SignatureError, match="names Alipay certificate 0123456789abcdef0123456789abcdef"):
        await make_client(Mode("v3", cert=True, aes=False)).version_detail("0.0.1", "com.alipay.alipaywallet")


async def test_a_public_key_client_ignores_the_certificate_header(
    make_client: ClientFactory, modes_sandbox: SandboxGateway
) -> None:
    modes_sandbox.fail_next(Fault.WRONG_CERT_SN)  # the signature is good; only certificate mode reads alipay-sn
    assert (await make_client().version_detail("0.0.1", "com.alipay.alipaywallet"))["app_version"] == "0.0.1"


async def test_unsigned_error_is_an_error(make_client: ClientFactory, modes_sandbox: SandboxGateway) -> None:
    modes_sandbox.fail_next(Fault.UNSIGNED_ERROR)
    with pytest.raises(BusinessError) as caught:
        await make_client().version_detail("0.0.1", "com.alipay.alipaywallet")
    assert (caught.value.code, caught.value.sub_code, caught.value.signed) == ("401", "isv.invalid-app-id", False)


async def test_http_502_is_retried(make_client: ClientFactory, modes_sandbox: SandboxGateway) -> None:
    modes_sandbox.fail_next(Fault.HTTP_502, times=3)
    with pytest.raises(GatewayTransportError, match="502"):
        await make_client(retries=2).version_detail("0.0.1", "com.alipay.alipaywallet")
    assert len(modes_sandbox.calls) == 3


async def test_timeout_is_retried(make_client: ClientFactory, modes_sandbox: SandboxGateway) -> None:
    modes_sandbox.fail_next(Fault.slow(1.0))
    node = await make_client(retries=1, timeout_s=0.2).version_detail("0.0.1", "com.alipay.alipaywallet")
    assert node["app_version"] == "0.0.1"


async def test_verifying_with_the_apps_own_key_says_so(
    modes_url: str, demo_credentials: DemoCredentials, credentials: Credentials, modes_sandbox: SandboxGateway
) -> None:
    mixed_up = Credentials(credentials.app_id, credentials.private_key, demo_credentials.app_public_key)
    client = AlipayV3Client(mixed_up, gateway_url=modes_url, retries=0)
    try:
        with pytest.raises(SignatureError, match="ALIPAY_PUBLIC_KEY is Alipay's public key"):
            await client.version_detail("0.0.1", "com.alipay.alipaywallet")
    finally:
        await client.aclose()


async def test_connection_refused(make_client: ClientFactory) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(GatewayTransportError, match="unreachable"):
        await make_client(gateway_url=f"http://127.0.0.1:{port}", retries=0).version_detail("0.0.1", "x.y")


def test_v3_is_rsa2_only(credentials: Credentials) -> None:
    legacy = Credentials(credentials.app_id, credentials.private_key, credentials.alipay_public_key, SignType.RSA)
    with pytest.raises(ValueError, match="RSA2 only"):
        AlipayV3Client(legacy)


# ------------------------------------------------------------------------------------- the wire, recorded


async def test_request_layout(demo_credentials: DemoCredentials, cert_chain: CertChain, aes_key: bytes) -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503)

    mode = Mode("v3", cert=True, aes=True)
    creds = credentials_for(mode, demo_credentials, cert_chain, aes_key)
    client = AlipayV3Client(
        creds, gateway_url="https://gw.test/prefix/", transport=httpx.MockTransport(record), retries=0
    )
    try:
        with pytest.raises(GatewayTransportError):
            await client.version_detail("1.0 beta/版", "com.amap.app", MERCHANT_TOKEN)
    finally:
        await client.aclose()
    [request] = seen
    assert request.method == "GET"
    assert request.content == b""
    path_query = request.url.raw_path.decode("ascii")
    # "/" (and , : @ ! $ ' ( ) * ?) stay as they are: aiohttp sends them decoded, and the signature covers the wire.
    assert path_query == (
        "/prefix/v3/alipay/open/mini/version/detail/query?app_version=1.0%20beta/%E7%89%88&bundle_id=com.amap.app"
    )
    assert unquote(request.url.params["app_version"]) == "1.0 beta/版"
    match = AUTHORIZATION.fullmatch(request.headers["authorization"])
    assert match is not None
    assert (match["app_id"], match["sn"]) == (mode.app_id, cert_chain.app_cert_sn)
    assert abs(int(match["ts"]) / 1000 - datetime.now(UTC).timestamp()) < 60
    assert request.headers["alipay-root-cert-sn"] == cert_chain.alipay_root_cert_sn
    assert request.headers["alipay-encrypt-type"] == "AES"
    assert request.headers["alipay-app-auth-token"] == MERCHANT_TOKEN
    # The signature covers what went on the wire: rebuild the text from the request as received.
    auth_string = request.headers["authorization"].split(" ", 1)[1].rsplit(",sign=", 1)[0]
    content = request_sign_content(auth_string, "GET", path_query, "", MERCHANT_TOKEN)
    assert content.endswith(f"\nGET\n{path_query}\n\n{MERCHANT_TOKEN}\n")
    assert verify(content.encode(), match["sign"], demo_credentials.app_public_key, SignType.RSA2)


def _answer(
    status: int,
    body: bytes,
    demo_credentials: DemoCredentials,
    *,
    signed: bool = True,
    headers: dict[str, str] | None = None,
) -> httpx.MockTransport:
    """A hand-made answer, signed with the Alipay key over ``body`` as Alipay would."""

    def handler(request: httpx.Request) -> httpx.Response:
        extra = dict(headers or {})
        if signed:
            content = response_sign_content("1764355289000", "n-1", body.decode("utf-8", "replace"))
            extra |= {
                "alipay-timestamp": "1764355289000",
                "alipay-nonce": "n-1",
                "alipay-signature": sign(content.encode(), demo_credentials.alipay_private_key, SignType.RSA2),
            }
        return httpx.Response(status, content=body, headers=extra)

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("status", "body", "signed", "error", "message"),
    [
        (200, b"[1, 2]", True, GatewayProtocolError, "not a JSON object"),
        (200, b"{not json", True, GatewayProtocolError, "not valid JSON"),
        (200, b"\xff\xfe", False, GatewayProtocolError, "not UTF-8"),
        (500, b"\xff\xfe", False, GatewayTransportError, "HTTP 500"),
        (404, b"<html>not found</html>", False, GatewayProtocolError, "HTTP 404"),
        (400, b'{"message": "no code"}', True, GatewayProtocolError, "HTTP 400"),
        (302, b"", False, GatewayProtocolError, "HTTP 302"),
        (503, b'{"code": "isp.unknow-error", "message": 5}', True, GatewayUnavailable, "503"),
    ],
)
async def test_unreadable_answers(
    credentials: Credentials,
    demo_credentials: DemoCredentials,
    status: int,
    body: bytes,
    signed: bool,
    error: type[Exception],
    message: str,
) -> None:
    transport = _answer(status, body, demo_credentials, signed=signed)
    client = AlipayV3Client(credentials, gateway_url="https://gw.test", transport=transport, retries=0)
    try:
        with pytest.raises(error, match=message):
            await client.version_detail("0.0.1", "com.alipay.alipaywallet")
    finally:
        await client.aclose()


async def test_a_signature_without_its_timestamp_is_refused(
    credentials: Credentials, demo_credentials: DemoCredentials
) -> None:
    transport = _answer(200, b"{}", demo_credentials, signed=False, headers={"alipay-signature": "c2lnbg=="})
    client = AlipayV3Client(credentials, gateway_url="https://gw.test", transport=transport, retries=0)
    try:
        with pytest.raises(SignatureError, match="without alipay-timestamp or alipay-nonce"):
            await client.version_detail("0.0.1", "com.alipay.alipaywallet")
    finally:
        await client.aclose()
