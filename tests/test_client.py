"""The gateway client against the sandbox gateway over real HTTP: success, retries, every fault."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from graph.gateway.client import AlipayClient, Backoff, Credentials
from graph.gateway.errors import (
    BusinessError,
    GatewayProtocolError,
    GatewayTransportError,
    GatewayUnavailable,
    SignatureError,
)
from graph.gateway.keys import load_public_key
from graph.gateway.signing import SHANGHAI, SignType
from graph.sandbox import DemoCredentials, Fault, SandboxGateway
from tests.conftest import MERCHANT_TOKEN, NO_WAIT

ClientFactory = Callable[..., AlipayClient]


@pytest.fixture
async def make_client(credentials: Credentials, gateway_url: str) -> AsyncIterator[ClientFactory]:
    made: list[AlipayClient] = []

    def make(**kwargs: object) -> AlipayClient:
        options: dict[str, object] = {"gateway_url": gateway_url, "backoff": NO_WAIT, "timeout_s": 2.0}
        options.update(kwargs)
        creds = options.pop("credentials", credentials)
        client = AlipayClient(creds, **options)  # type: ignore[arg-type]
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


async def test_success_returns_the_verified_node(make_client: ClientFactory, sandbox: SandboxGateway) -> None:
    node = await make_client().version_detail("0.0.1", "com.alipay.alipaywallet")
    assert node["code"] == "10000"
    assert node["app_version"] == "0.0.1"
    # The sandbox writes "/" as "\/" and Chinese raw: both must survive verification and parsing.
    assert node["app_logo"].startswith("https://")
    assert any("\u4e00" <= ch <= "\u9fff" for ch in node["app_name"])
    [call] = sandbox.calls
    assert (call.outcome, call.app_version, call.bundle_id, call.sign_type) == (
        "ok",
        "0.0.1",
        "com.alipay.alipaywallet",
        "RSA2",
    )
    assert not call.has_app_auth_token


async def test_legacy_rsa_sign_type(
    make_client: ClientFactory, credentials: Credentials, sandbox: SandboxGateway
) -> None:
    legacy = Credentials(credentials.app_id, credentials.private_key, credentials.alipay_public_key, SignType.RSA)
    node = await make_client(credentials=legacy).version_detail("0.0.1", "com.amap.app")
    assert node["code"] == "10000"
    assert sandbox.calls[0].sign_type == "RSA"


async def test_app_auth_token_is_sent_and_checked(make_client: ClientFactory, sandbox: SandboxGateway) -> None:
    client = make_client()
    await client.version_detail("0.0.1", "com.alipay.alipaywallet", MERCHANT_TOKEN)
    assert sandbox.calls[-1].has_app_auth_token
    with pytest.raises(BusinessError) as caught:
        await client.version_detail("0.0.1", "com.alipay.alipaywallet", "202611BBunknown")
    assert caught.value.code == "20001"
    assert "202611BBunknown" not in str(caught.value) + repr(caught.value)


async def test_timestamp_is_beijing_time_whatever_the_clock_zone(
    make_client: ClientFactory, sandbox: SandboxGateway
) -> None:
    # A clock in New York time: the gateway checks the timestamp as Asia/Shanghai wall time.
    def new_york_now() -> datetime:
        return datetime.now(ZoneInfo("America/New_York"))

    await make_client(clock=new_york_now).version_detail("0.0.1", "com.alipay.alipaywallet")
    sent = datetime.strptime(sandbox.calls[0].timestamp or "", "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
    beijing = datetime.now(SHANGHAI)
    assert abs(sent - beijing) < timedelta(minutes=1)


async def test_a_machine_local_timestamp_would_be_refused(make_client: ClientFactory, sandbox: SandboxGateway) -> None:
    # The bug the official SDKs have in UTC containers: local wall time sent as if it were Beijing time.
    def utc_wall_clock_as_beijing() -> datetime:
        return datetime.now(UTC).replace(tzinfo=SHANGHAI)

    with pytest.raises(BusinessError) as caught:
        await make_client(clock=utc_wall_clock_as_beijing).version_detail("0.0.1", "com.alipay.alipaywallet")
    assert caught.value.sub_code == "isv.invalid-timestamp"


@pytest.mark.parametrize(
    ("fault", "error", "sub_code"),
    [
        (Fault.BUSY, GatewayUnavailable, "isp.unknow-error"),
        (Fault.SYSTEM_ERROR, GatewayUnavailable, "SYSTEM_ERROR"),
        (Fault.CALL_LIMITED, GatewayUnavailable, "isv.app-call-limited"),
    ],
)
async def test_retryable_answers_are_retried_then_succeed(
    make_client: ClientFactory, sandbox: SandboxGateway, fault: Fault, error: type[Exception], sub_code: str
) -> None:
    sandbox.fail_next(fault, times=2)
    node = await make_client(retries=2).version_detail("0.0.1", "com.alipay.alipaywallet")
    assert node["code"] == "10000"
    assert [c.outcome for c in sandbox.calls] == [fault.kind.name, fault.kind.name, "ok"]
    sandbox.reset()
    sandbox.fail_next(fault, times=3)
    with pytest.raises(error) as caught:
        await make_client(retries=2).version_detail("0.0.1", "com.alipay.alipaywallet")
    assert getattr(caught.value, "sub_code", None) == sub_code
    assert len(sandbox.calls) == 3


async def test_every_attempt_is_signed_afresh(make_client: ClientFactory, sandbox: SandboxGateway) -> None:
    ticks = iter(range(100))

    def clock() -> datetime:
        return datetime.now(UTC) + timedelta(seconds=next(ticks))

    sandbox.fail_next(Fault.BUSY, times=2)
    await make_client(retries=2, clock=clock).version_detail("0.0.1", "com.alipay.alipaywallet")
    stamps = [c.timestamp for c in sandbox.calls]
    assert len(set(stamps)) == 3  # three timestamps, each accepted by the gateway's signature check


async def test_backoff_waits_between_attempts(make_client: ClientFactory, sandbox: SandboxGateway) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    sandbox.fail_next(Fault.BUSY, times=3)
    with pytest.raises(GatewayUnavailable):
        await make_client(retries=2, sleep=sleep, backoff=Backoff(base_s=0.1, cap_s=0.15)).version_detail(
            "0.0.1", "com.alipay.alipaywallet"
        )
    assert len(waits) == 2
    assert 0 <= waits[0] <= 0.1
    assert 0 <= waits[1] <= 0.15  # capped


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.BUSINESS_ERROR, BusinessError),
        (Fault.BAD_SIGNATURE, SignatureError),
        (Fault.TAMPERED, SignatureError),
        (Fault.DUPLICATE_NODE, SignatureError),
        (Fault.UNSIGNED_SUCCESS, SignatureError),
        (Fault.WRONG_KEY, SignatureError),
        (Fault.GARBAGE_BODY, GatewayProtocolError),
        (Fault.TRUNCATED_JSON, GatewayProtocolError),
    ],
)
async def test_non_retryable_faults_fail_at_once(
    make_client: ClientFactory, sandbox: SandboxGateway, fault: Fault, error: type[Exception]
) -> None:
    sandbox.fail_next(fault, times=5)
    with pytest.raises(error):
        await make_client(retries=2).version_detail("0.0.1", "com.alipay.alipaywallet")
    assert len(sandbox.calls) == 1


async def test_unsigned_error_is_an_error_never_data(make_client: ClientFactory, sandbox: SandboxGateway) -> None:
    sandbox.fail_next(Fault.UNSIGNED_ERROR)
    with pytest.raises(BusinessError) as caught:
        await make_client().version_detail("0.0.1", "com.alipay.alipaywallet")
    assert caught.value.signed is False
    assert caught.value.code == "40002"


async def test_http_502_is_retried(make_client: ClientFactory, sandbox: SandboxGateway) -> None:
    sandbox.fail_next(Fault.HTTP_502, times=3)
    with pytest.raises(GatewayTransportError, match="502"):
        await make_client(retries=2).version_detail("0.0.1", "com.alipay.alipaywallet")
    assert len(sandbox.calls) == 3


async def test_timeout_per_attempt_is_retried(make_client: ClientFactory, sandbox: SandboxGateway) -> None:
    sandbox.fail_next(Fault.slow(1.0), times=1)
    node = await make_client(retries=1, timeout_s=0.2).version_detail("0.0.1", "com.alipay.alipaywallet")
    assert node["code"] == "10000"
    # The slow attempt is logged when the sandbox finishes sleeping, after the client gave up on it.
    for _ in range(200):
        if len(sandbox.calls) == 2:
            break
        await asyncio.sleep(0.01)
    assert sorted(c.outcome for c in sandbox.calls) == ["SLOW", "ok"]


async def test_business_errors_from_the_gateway(make_client: ClientFactory, sandbox: SandboxGateway) -> None:
    client = make_client()
    with pytest.raises(BusinessError) as caught:
        await client.version_detail("9.9.9", "com.alipay.alipaywallet")
    assert (caught.value.code, caught.value.sub_code, caught.value.signed) == ("40004", "VERSION_NOT_EXIST", True)
    with pytest.raises(BusinessError) as caught:
        await client.version_detail("0.0.1", "com.example.unknown")
    assert caught.value.sub_code == "BUNDLE_ID_NOT_EXIST"
    assert len(sandbox.calls) == 2  # business errors are never retried


async def test_verifying_with_the_apps_own_key_says_so(
    make_client: ClientFactory, credentials: Credentials, demo_credentials: DemoCredentials, sandbox: SandboxGateway
) -> None:
    mixed_up = Credentials(credentials.app_id, credentials.private_key, demo_credentials.app_public_key)
    with pytest.raises(SignatureError, match="ALIPAY_PUBLIC_KEY is Alipay's public key"):
        await make_client(credentials=mixed_up).version_detail("0.0.1", "com.alipay.alipaywallet")


async def test_connection_refused_is_retried_then_reported(make_client: ClientFactory) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    attempts: list[float] = []

    async def sleep(seconds: float) -> None:
        attempts.append(seconds)

    client = make_client(gateway_url=f"http://127.0.0.1:{port}/gateway.do", retries=2, sleep=sleep)
    with pytest.raises(GatewayTransportError, match="unreachable"):
        await client.version_detail("0.0.1", "com.alipay.alipaywallet")
    assert len(attempts) == 2


def _wire(status: int, body: bytes) -> httpx.MockTransport:
    # Wire states the sandbox does not produce; httpx's MockTransport stands in for the network only.
    return httpx.MockTransport(lambda request: httpx.Response(status, content=body))


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (404, b"not found", "HTTP 404"),
        (200, b"\xff\xfe not utf-8", "not UTF-8"),
        (200, b'{"alipay_open_mini_version_detail_query_response":"text","sign":"x"}', "not an object"),
        (200, b'{"alipay_open_mini_version_detail_query_response":{"msg":"?"}}', "no code"),
        (200, b'{"alipay_open_mini_version_detail_query_response":{"code":"10000"},"sign":5}', "sign is not"),
    ],
)
async def test_unreadable_answers(credentials: Credentials, status: int, body: bytes, message: str) -> None:
    client = AlipayClient(credentials, gateway_url="http://gateway.test/gateway.do", transport=_wire(status, body))
    try:
        with pytest.raises(GatewayProtocolError, match=message):
            await client.version_detail("0.0.1", "com.alipay.alipaywallet")
    finally:
        await client.aclose()


async def test_request_layout(credentials: Credentials, demo_credentials: DemoCredentials) -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503)

    client = AlipayClient(
        credentials, gateway_url="http://gateway.test/gateway.do", transport=httpx.MockTransport(record), retries=0
    )
    try:
        with pytest.raises(GatewayTransportError):
            await client.version_detail("0.0.1", "com.alipay.alipaywallet", MERCHANT_TOKEN)
    finally:
        await client.aclose()
    [request] = seen
    # Common params in the query string, biz_content alone in the form body.
    assert set(request.url.params) == {
        "app_id",
        "method",
        "format",
        "charset",
        "sign_type",
        "timestamp",
        "version",
        "app_auth_token",
        "sign",
    }
    assert request.content == (
        b"biz_content=%7B%22app_version%22%3A%220.0.1%22%2C%22bundle_id%22%3A%22com.alipay.alipaywallet%22%7D"
    )
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert load_public_key(demo_credentials.alipay_public_key_pem, "k") is not None


def test_credentials_repr_holds_no_key(credentials: Credentials) -> None:
    assert repr(credentials) == f"Credentials(app_id={credentials.app_id!r}, sign_type=RSA2)"
