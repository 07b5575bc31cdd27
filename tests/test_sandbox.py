"""The sandbox gateway, driven by hand-built requests: as strict as Alipay, and answering byte for byte like it."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from starlette.applications import Starlette

from graph.gateway.keys import load_private_key, load_public_key
from graph.gateway.signing import TIMESTAMP_FORMAT, SignType, gateway_timestamp, sign, sign_params, verify
from graph.sandbox import (
    DEFAULT_BUNDLE_ID,
    DEMO_APP_ID,
    ERROR_NODE,
    KNOWN_BUNDLE_IDS,
    METHOD,
    METHOD_NODE,
    SEED_VERSIONS,
    Call,
    DemoCredentials,
    Fault,
    FaultKind,
    SandboxGateway,
    generate_credentials,
    token_digest,
)
from graph.sandbox.credentials import stranger_key
from graph.sandbox.seed import RESPONSE_FIELDS
from tests.servers import serve

NOW = datetime(2026, 11, 28, 16, 41, 29, tzinfo=UTC)  # 2026-11-29 00:41:29 in Beijing
TOKEN = "202611BB0123456789abcdef0123456789abcdef"
BIZ: Mapping[str, Any] = {"app_version": "0.0.1", "bundle_id": DEFAULT_BUNDLE_ID}
SEEDED_001 = SEED_VERSIONS["0.0.1", DEFAULT_BUNDLE_ID]


@pytest.fixture(scope="session")
def creds() -> DemoCredentials:
    return generate_credentials()


@pytest.fixture(scope="session")
def app_key(creds: DemoCredentials) -> rsa.RSAPrivateKey:
    return load_private_key(creds.app_private_key_pem, "app key")


@pytest.fixture(scope="session")
def alipay_key(creds: DemoCredentials) -> rsa.RSAPublicKey:
    return load_public_key(creds.alipay_public_key_pem, "alipay key")


@pytest.fixture
def gateway(creds: DemoCredentials) -> SandboxGateway:
    return SandboxGateway(
        alipay_private_key=creds.alipay_private_key,
        apps={creds.app_id: creds.app_public_key},
        auth_tokens=[TOKEN],
        clock=lambda: NOW,
    )


@asynccontextmanager
async def connect(gateway: SandboxGateway) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=gateway.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        yield client


@pytest.fixture
async def client(gateway: SandboxGateway) -> AsyncIterator[httpx.AsyncClient]:
    async with connect(gateway) as client:
        yield client


@pytest.fixture
def make(creds: DemoCredentials, app_key: rsa.RSAPrivateKey) -> SignedParams:
    return SignedParams(creds, app_key)


@dataclass(frozen=True)
class SignedParams:
    creds: DemoCredentials
    app_key: rsa.RSAPrivateKey

    def __call__(
        self,
        biz: Mapping[str, Any] | str | None = BIZ,
        *,
        sign_type: SignType = SignType.RSA2,
        now: datetime = NOW,
        key: rsa.RSAPrivateKey | None = None,
        **extra: str,
    ) -> dict[str, str]:
        """Signed params as a correct client builds them; ``extra`` adds or overrides params before signing."""
        params = {
            "app_id": self.creds.app_id,
            "method": METHOD,
            "format": "json",
            "charset": "utf-8",
            "sign_type": sign_type.value,
            "timestamp": gateway_timestamp(now),
            "version": "1.0",
            **extra,
        }
        if biz is not None:
            params["biz_content"] = biz if isinstance(biz, str) else json.dumps(biz, ensure_ascii=False)
        return self.resign(params, sign_type=sign_type, key=key)

    def resign(
        self, params: dict[str, str], *, sign_type: SignType = SignType.RSA2, key: rsa.RSAPrivateKey | None = None
    ) -> dict[str, str]:
        params["sign"] = sign_params(params, key or self.app_key, sign_type)
        return params


async def post(
    client: httpx.AsyncClient, params: Mapping[str, str], *, in_body: tuple[str, ...] = ("biz_content",)
) -> httpx.Response:
    """Common params in the query string, the rest as a form body, as the SDKs send them."""
    query = {k: v for k, v in params.items() if k not in in_body}
    form = {k: v for k, v in params.items() if k in in_body}
    return await client.post("/gateway.do", params=query, data=form)


@dataclass(frozen=True)
class Answer:
    node_name: str
    node_text: str  # raw, as in the body
    sign: str | None

    @property
    def node(self) -> dict[str, Any]:
        node: dict[str, Any] = json.loads(self.node_text)
        return node


def split(body: str) -> Answer:
    """Cut a well-formed gateway body by hand: the node's raw text is what the signature covers."""
    assert body.startswith('{"')
    name_end = body.index('":')
    start = name_end + 2
    if ',"sign":"' in body:
        at = body.rindex(',"sign":"')
        assert body.endswith('"}')
        return Answer(body[2:name_end], body[start:at], body[at + len(',"sign":"') : -2])
    assert body.endswith("}")
    return Answer(body[2:name_end], body[start:-1], None)


def verified(response: httpx.Response, key: rsa.RSAPublicKey, sign_type: SignType = SignType.RSA2) -> Answer:
    answer = split(response.content.decode("utf-8"))
    assert answer.sign is not None
    assert verify(answer.node_text.encode("utf-8"), answer.sign, key, sign_type)
    return answer


def refused(
    response: httpx.Response,
    key: rsa.RSAPublicKey,
    *,
    code: str,
    sub_code: str,
    node_name: str = METHOD_NODE,
    signed: bool = True,
    sign_type: SignType = SignType.RSA2,
) -> dict[str, Any]:
    assert response.status_code == 200
    if signed:
        answer = verified(response, key, sign_type)
    else:
        answer = split(response.text)
        assert answer.sign is None
    assert answer.node_name == node_name
    node = answer.node
    assert list(node) == ["code", "msg", "sub_code", "sub_msg"]
    assert (node["code"], node["sub_code"]) == (code, sub_code)
    assert node["sub_msg"]
    return node


# --- a good call -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sign_type", list(SignType))
async def test_good_call_returns_seeded_version_signed_over_the_raw_node(
    client: httpx.AsyncClient,
    gateway: SandboxGateway,
    make: SignedParams,
    alipay_key: rsa.RSAPublicKey,
    creds: DemoCredentials,
    sign_type: SignType,
) -> None:
    response = await post(client, make(sign_type=sign_type))

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html;charset=utf-8"
    body = response.content
    assert b"https:\\/\\/" in body
    assert "小程序demo".encode() in body
    answer = verified(response, alipay_key, sign_type)
    assert answer.node_name == METHOD_NODE
    assert answer.node_text.startswith('{"code":"10000","msg":"Success","app_version":"0.0.1","app_name":"小程序demo"')
    assert answer.node == {"code": "10000", "msg": "Success", **SEEDED_001}
    other = SignType.RSA if sign_type is SignType.RSA2 else SignType.RSA2
    assert not verify(answer.node_text.encode(), answer.sign or "", alipay_key, other)
    assert gateway.calls == [
        Call(
            app_id=creds.app_id,
            method=METHOD,
            sign_type=sign_type.value,
            timestamp="2026-11-29 00:41:29",
            app_version="0.0.1",
            bundle_id=DEFAULT_BUNDLE_ID,
            app_auth_token_digest=None,
            outcome="ok",
            code="10000",
            sub_code=None,
        )
    ]
    assert not gateway.calls[0].has_app_auth_token


async def test_every_seeded_version_is_served(
    client: httpx.AsyncClient, make: SignedParams, alipay_key: rsa.RSAPublicKey
) -> None:
    for (app_version, bundle_id), record in SEED_VERSIONS.items():
        response = await post(client, make({"app_version": app_version, "bundle_id": bundle_id}))
        assert verified(response, alipay_key).node == {"code": "10000", "msg": "Success", **record}


@pytest.mark.parametrize("biz", [{"app_version": "0.0.1"}, {"app_version": "0.0.1", "bundle_id": ""}])
async def test_bundle_id_defaults_to_alipay(
    client: httpx.AsyncClient, make: SignedParams, alipay_key: rsa.RSAPublicKey, biz: Mapping[str, Any]
) -> None:
    response = await post(client, make(biz))
    assert verified(response, alipay_key).node["app_name"] == SEEDED_001["app_name"]


@pytest.mark.parametrize("in_body", [(), ("biz_content",), ("app_id", "method", "sign", "timestamp", "biz_content")])
async def test_params_may_come_in_query_string_or_form_body(
    client: httpx.AsyncClient, make: SignedParams, alipay_key: rsa.RSAPublicKey, in_body: tuple[str, ...]
) -> None:
    response = await post(client, make(), in_body=in_body)
    assert verified(response, alipay_key).node["code"] == "10000"


async def test_query_string_wins_over_the_body_for_a_repeated_name(
    client: httpx.AsyncClient, make: SignedParams, alipay_key: rsa.RSAPublicKey
) -> None:
    params = make()
    biz = params.pop("biz_content")
    response = await client.post("/gateway.do", params=params, data={"biz_content": biz, "method": "alipay.other"})
    assert verified(response, alipay_key).node["code"] == "10000"


async def test_a_body_that_is_not_a_form_is_not_read(
    client: httpx.AsyncClient, gateway: SandboxGateway, make: SignedParams, alipay_key: rsa.RSAPublicKey
) -> None:
    params = make()
    biz = params.pop("biz_content")
    response = await client.post("/gateway.do", params=params, json={"biz_content": biz})
    refused(response, alipay_key, code="40002", sub_code="isv.invalid-signature")
    assert gateway.calls[-1].app_version is None


async def test_empty_params_are_neither_signed_nor_required(
    client: httpx.AsyncClient, make: SignedParams, alipay_key: rsa.RSAPublicKey
) -> None:
    params = {**make(), "app_auth_token": "", "notify_url": ""}
    assert verified(await post(client, params), alipay_key).node["code"] == "10000"


async def test_default_clock_is_the_real_time(creds: DemoCredentials, make: SignedParams) -> None:
    gateway = SandboxGateway.for_credentials(creds)
    alipay_key = load_public_key(creds.alipay_public_key_pem, "alipay key")
    async with connect(gateway) as client:
        response = await post(client, make(now=datetime.now(UTC)))
    assert verified(response, alipay_key).node["code"] == "10000"


async def test_custom_versions_replace_the_seed(
    creds: DemoCredentials, make: SignedParams, alipay_key: rsa.RSAPublicKey
) -> None:
    record = {"app_version": "2.0.0", "app_name": "电视版", "status": "RELEASE"}
    gateway = SandboxGateway(
        alipay_private_key=creds.alipay_private_key,
        apps={creds.app_id: creds.app_public_key},
        versions={("2.0.0", "com.example.tv"): record},
        clock=lambda: NOW,
    )
    async with connect(gateway) as client:
        tv = await post(client, make({"app_version": "2.0.0", "bundle_id": "com.example.tv"}))
        seeded = await post(client, make())
    assert verified(tv, alipay_key).node == {"code": "10000", "msg": "Success", **record}
    refused(seeded, alipay_key, code="40004", sub_code="VERSION_NOT_EXIST")


async def test_official_sdk_signs_what_the_gateway_accepts_and_verifies_what_it_answers(
    client: httpx.AsyncClient, make: SignedParams, app_key: rsa.RSAPrivateKey, creds: DemoCredentials
) -> None:
    sdk = pytest.importorskip("alipay.aop.api.util.SignatureUtils")
    pkcs1 = app_key.private_bytes(Encoding.DER, PrivateFormat.TraditionalOpenSSL, NoEncryption())
    params = make()
    del params["sign"]  # the SDK's get_sign_content signs every key it is given
    params["sign"] = sdk.sign_with_rsa2(base64.b64encode(pkcs1).decode(), sdk.get_sign_content(params), "utf-8")
    answer = split((await post(client, params)).text)
    spki = "".join(creds.alipay_public_key_pem.splitlines()[1:-1])
    assert sdk.verify_with_rsa(spki, answer.node_text.encode("utf-8"), answer.sign)
    assert answer.node["code"] == "10000"


# --- refusals, in the gateway's order ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "sub_code", "node_name", "signed"),
    [
        ("app_id", "isv.missing-app-id", ERROR_NODE, False),
        ("method", "isv.missing-method", ERROR_NODE, True),
        ("charset", "isv.missing-charset", METHOD_NODE, True),
        ("sign_type", "isv.missing-signature-type", METHOD_NODE, True),
        ("sign", "isv.missing-signature", METHOD_NODE, True),
        ("timestamp", "isv.missing-timestamp", METHOD_NODE, True),
        ("version", "isv.missing-version", METHOD_NODE, True),
    ],
)
@pytest.mark.parametrize("how", ["absent", "empty"])
async def test_missing_param(
    client: httpx.AsyncClient,
    gateway: SandboxGateway,
    make: SignedParams,
    alipay_key: rsa.RSAPublicKey,
    name: str,
    sub_code: str,
    node_name: str,
    signed: bool,
    how: str,
) -> None:
    params = make()
    if how == "absent":
        del params[name]
    else:
        params[name] = ""
    node = refused(
        await post(client, params), alipay_key, code="40001", sub_code=sub_code, node_name=node_name, signed=signed
    )
    assert node["msg"] == "Missing Required Arguments"
    assert gateway.calls[-1].outcome == sub_code.removeprefix("isv.")


async def test_unknown_app_id_gets_an_unsigned_error_response(
    client: httpx.AsyncClient, gateway: SandboxGateway, make: SignedParams, alipay_key: rsa.RSAPublicKey
) -> None:
    response = await post(client, make(app_id="2021009999999999"))
    node = refused(
        response, alipay_key, code="40002", sub_code="isv.invalid-app-id", node_name=ERROR_NODE, signed=False
    )
    assert response.text == f'{{"error_response":{json.dumps(node, ensure_ascii=False, separators=(",", ":"))}}}'
    assert node["msg"] == "Invalid Arguments"
    assert gateway.calls[-1].outcome == "invalid-app-id"
    assert gateway.calls[-1].code == "40002"


async def test_unknown_app_missing_a_param_is_unsigned_too(
    client: httpx.AsyncClient, make: SignedParams, alipay_key: rsa.RSAPublicKey
) -> None:
    params = make(app_id="2021009999999999")
    del params["sign"]
    refused(
        await post(client, params),
        alipay_key,
        code="40001",
        sub_code="isv.missing-signature",
        node_name=ERROR_NODE,
        signed=False,
    )


@pytest.mark.parametrize(
    ("extra", "sub_code"),
    [
        ({"format": "xml"}, "isv.invalid-format"),
        ({"charset": "gbk"}, "isv.invalid-charset"),
        ({"version": "2.0"}, "isv.invalid-version"),
    ],
)
async def test_format_charset_and_version_are_checked(
    client: httpx.AsyncClient, make: SignedParams, alipay_key: rsa.RSAPublicKey, extra: dict[str, str], sub_code: str
) -> None:
    refused(await post(client, make.resign(make() | extra)), alipay_key, code="40002", sub_code=sub_code)


async def test_format_may_be_absent_and_case_is_free(
    client: httpx.AsyncClient, make: SignedParams, alipay_key: rsa.RSAPublicKey
) -> None:
    assert verified(await post(client, make(charset="UTF-8", format="JSON")), alipay_key).node["code"] == "10000"
    params = make()
    del params["format"]
    assert verified(await post(client, make.resign(params)), alipay_key).node["code"] == "10000"


@pytest.mark.parametrize("sign_type", ["rsa2", "MD5", "HMAC-SHA256"])
async def test_unknown_sign_type_is_refused_and_answered_in_rsa2(
    client: httpx.AsyncClient, make: SignedParams, alipay_key: rsa.RSAPublicKey, sign_type: str
) -> None:
    params = make() | {"sign_type": sign_type}
    refused(await post(client, params), alipay_key, code="40002", sub_code="isv.invalid-signature-type")


@pytest.fixture
def utc_machine(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("utc_machine")
async def test_timestamp_in_the_machines_utc_time_is_eight_hours_off(
    client: httpx.AsyncClient, gateway: SandboxGateway, make: SignedParams, alipay_key: rsa.RSAPublicKey
) -> None:
    # What the Python and Node SDKs send from a UTC container: local wall time, not Beijing time.
    local = time.strftime(TIMESTAMP_FORMAT, time.localtime(NOW.timestamp()))
    assert local == "2026-11-28 16:41:29"
    refused(await post(client, make(timestamp=local)), alipay_key, code="40002", sub_code="isv.invalid-timestamp")
    assert gateway.calls[-1].timestamp == local


@pytest.mark.parametrize("offset_s", [-901, 901, -86400])
async def test_timestamp_outside_the_tolerance_is_refused(
    client: httpx.AsyncClient, make: SignedParams, alipay_key: rsa.RSAPublicKey, offset_s: int
) -> None:
    params = make(now=NOW + timedelta(seconds=offset_s))
    refused(await post(client, params), alipay_key, code="40002", sub_code="isv.invalid-timestamp")


@pytest.mark.parametrize("offset_s", [-900, 0, 899])
async def test_timestamp_inside_the_tolerance_is_accepted(
    client: httpx.AsyncClient, make: SignedParams, alipay_key: rsa.RSAPublicKey, offset_s: int
) -> None:
    params = make(now=NOW + timedelta(seconds=offset_s))
    assert verified(await post(client, params), alipay_key).node["code"] == "10000"


@pytest.mark.parametrize(
    "timestamp",
    [
        "2026-11-29T00:41:29",
        "2026-11-29 0:41:29",
        "2026/11/29 00:41:29",
        "2026-13-29 00:41:29",
        "1795884089",
        "2026-11-29 00:41:29.000",
    ],
)
async def test_malformed_timestamp_is_refused(
    client: httpx.AsyncClient, make: SignedParams, alipay_key: rsa.RSAPublicKey, timestamp: str
) -> None:
    refused(await post(client, make(timestamp=timestamp)), alipay_key, code="40002", sub_code="isv.invalid-timestamp")


async def test_shorter_tolerance(creds: DemoCredentials, make: SignedParams, alipay_key: rsa.RSAPublicKey) -> None:
    gateway = SandboxGateway(
        alipay_private_key=creds.alipay_private_key,
        apps={creds.app_id: creds.app_public_key},
        clock=lambda: NOW,
        timestamp_tolerance_s=5,
    )
    async with connect(gateway) as client:
        late = await post(client, make(now=NOW - timedelta(seconds=6)))
    refused(late, alipay_key, code="40002", sub_code="isv.invalid-timestamp")


async def test_signature_by_another_key_is_refused_with_the_verified_text(
    client: httpx.AsyncClient,
    gateway: SandboxGateway,
    make: SignedParams,
    creds: DemoCredentials,
    alipay_key: rsa.RSAPublicKey,
) -> None:
    params = make(key=creds.alipay_private_key)
    node = refused(await post(client, params), alipay_key, code="40002", sub_code="isv.invalid-signature")
    assert node["sub_msg"].endswith(
        "网关生成的验签字符串为:" + "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign")
    )
    assert gateway.calls[-1].outcome == "invalid-signature"
    assert gateway.calls[-1].app_version == "0.0.1"


async def test_param_changed_after_signing_is_refused(
    client: httpx.AsyncClient, make: SignedParams, alipay_key: rsa.RSAPublicKey
) -> None:
    params = make() | {"biz_content": json.dumps({"app_version": "0.0.2"})}
    refused(await post(client, params), alipay_key, code="40002", sub_code="isv.invalid-signature")


@pytest.mark.parametrize("sign_value", ["not base64!", base64.b64encode(b"\0" * 256).decode()])
async def test_garbage_signature_is_refused(
    client: httpx.AsyncClient, make: SignedParams, alipay_key: rsa.RSAPublicKey, sign_value: str
) -> None:
    params = make() | {"sign": sign_value}
    refused(await post(client, params), alipay_key, code="40002", sub_code="isv.invalid-signature")


async def test_rsa_signature_under_rsa2_label_is_refused(
    client: httpx.AsyncClient, make: SignedParams, alipay_key: rsa.RSAPublicKey, app_key: rsa.RSAPrivateKey
) -> None:
    params = make()
    params["sign"] = sign_params(params, app_key, SignType.RSA)  # signed as RSA, labelled RSA2
    refused(await post(client, params), alipay_key, code="40002", sub_code="isv.invalid-signature")


async def test_bad_signature_message_masks_the_merchant_token(
    client: httpx.AsyncClient, make: SignedParams, creds: DemoCredentials, alipay_key: rsa.RSAPublicKey
) -> None:
    response = await post(client, make(app_auth_token=TOKEN, key=creds.alipay_private_key))
    node = refused(response, alipay_key, code="40002", sub_code="isv.invalid-signature")
    assert "app_auth_token=***&" in node["sub_msg"]
    assert TOKEN not in response.text


async def test_unknown_method_is_refused_in_an_error_response(
    client: httpx.AsyncClient, gateway: SandboxGateway, make: SignedParams, alipay_key: rsa.RSAPublicKey
) -> None:
    params = make(method="alipay.open.mini.version.delete")
    refused(await post(client, params), alipay_key, code="40002", sub_code="isv.invalid-method", node_name=ERROR_NODE)
    assert gateway.calls[-1].method == "alipay.open.mini.version.delete"


async def test_refusals_are_signed_with_the_requests_sign_type(
    client: httpx.AsyncClient, make: SignedParams, alipay_key: rsa.RSAPublicKey
) -> None:
    params = make(sign_type=SignType.RSA, method="alipay.open.mini.version.delete")
    refused(
        await post(client, params),
        alipay_key,
        code="40002",
        sub_code="isv.invalid-method",
        node_name=ERROR_NODE,
        sign_type=SignType.RSA,
    )


async def test_unknown_app_auth_token_is_refused(
    client: httpx.AsyncClient, gateway: SandboxGateway, make: SignedParams, alipay_key: rsa.RSAPublicKey
) -> None:
    node = refused(
        await post(client, make(app_auth_token="202611BBstale")),
        alipay_key,
        code="20001",
        sub_code="aop.invalid-app-auth-token",
    )
    assert node["msg"] == "Insufficient Token Permissions"
    assert gateway.calls[-1].app_auth_token_digest == token_digest("202611BBstale")


async def test_known_app_auth_token_is_accepted_and_logged_as_a_digest(
    client: httpx.AsyncClient, gateway: SandboxGateway, make: SignedParams, alipay_key: rsa.RSAPublicKey
) -> None:
    assert verified(await post(client, make(app_auth_token=TOKEN)), alipay_key).node["code"] == "10000"
    call = gateway.calls[-1]
    assert call.has_app_auth_token
    assert call.app_auth_token_digest == token_digest(TOKEN)
    assert TOKEN not in repr(call)
    assert token_digest(TOKEN) != token_digest(TOKEN + "x")


@pytest.mark.parametrize("biz_content", ["not json", "[1, 2]", '"0.0.1"', "{"])
async def test_biz_content_must_be_a_json_object(
    client: httpx.AsyncClient,
    gateway: SandboxGateway,
    make: SignedParams,
    alipay_key: rsa.RSAPublicKey,
    biz_content: str,
) -> None:
    refused(await post(client, make(biz_content)), alipay_key, code="40002", sub_code="isv.invalid-biz-content")
    assert (gateway.calls[-1].app_version, gateway.calls[-1].bundle_id) == (None, None)


@pytest.mark.parametrize(
    ("biz", "sub_code"),
    [
        (None, "APP_VERSION_IS_BLANK"),
        ({}, "APP_VERSION_IS_BLANK"),
        ({"app_version": ""}, "APP_VERSION_IS_BLANK"),
        ({"app_version": "   "}, "APP_VERSION_IS_BLANK"),
        ({"app_version": 1.0}, "APP_VERSION_IS_BLANK"),
        ({"app_version": "0.0.1", "bundle_id": "com.example.unknown"}, "BUNDLE_ID_NOT_EXIST"),
        ({"app_version": "0.0.1", "bundle_id": 42}, "BUNDLE_ID_NOT_EXIST"),
        ({"app_version": "9.9.9"}, "VERSION_NOT_EXIST"),
        ({"app_version": "0.0.1 "}, "VERSION_NOT_EXIST"),
        ({"app_version": "测试版"}, "VERSION_NOT_EXIST"),  # non-ASCII params are signed as UTF-8
    ],
)
async def test_business_failures(
    client: httpx.AsyncClient,
    gateway: SandboxGateway,
    make: SignedParams,
    alipay_key: rsa.RSAPublicKey,
    biz: Mapping[str, Any] | None,
    sub_code: str,
) -> None:
    node = refused(await post(client, make(biz)), alipay_key, code="40004", sub_code=sub_code)
    assert node["msg"] == "Business Failed"
    assert (gateway.calls[-1].outcome, gateway.calls[-1].sub_code) == ("business_error", sub_code)


async def test_get_is_not_allowed(client: httpx.AsyncClient, gateway: SandboxGateway, make: SignedParams) -> None:
    response = await client.get("/gateway.do", params=make())
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["code"] == "405"
    assert gateway.calls[-1].outcome == "method-not-allowed"
    assert gateway.calls[-1].app_version == "0.0.1"
    assert gateway.calls[-1].code is None


# --- faults ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "code", "msg", "sub_code", "sub_msg"),
    [
        (Fault.BUSY, "20000", "Service Currently Unavailable", "isp.unknow-error", "系统繁忙"),
        (Fault.SYSTEM_ERROR, "40004", "Business Failed", "SYSTEM_ERROR", "系统繁忙"),
        (Fault.CALL_LIMITED, "40005", "Call Limited", "isv.app-call-limited", "应用调用次数超限"),
        (Fault.BUSINESS_ERROR, "40004", "Business Failed", "APPLICATION_TYPE_NOT_MINIAPP", "应用类型不是小程序类型"),
        (Fault.business_error("VERSION_IS_BLANK"), "40004", "Business Failed", "VERSION_IS_BLANK", "版本字段为空"),
        (Fault.business_error("X_NEW_CODE"), "40004", "Business Failed", "X_NEW_CODE", "X_NEW_CODE"),
        (Fault.business_error("X_NEW_CODE", "新的错误"), "40004", "Business Failed", "X_NEW_CODE", "新的错误"),
    ],
    ids=lambda value: value.name if isinstance(value, Fault) else None,
)
async def test_signed_error_faults(
    client: httpx.AsyncClient,
    gateway: SandboxGateway,
    make: SignedParams,
    alipay_key: rsa.RSAPublicKey,
    fault: Fault,
    code: str,
    msg: str,
    sub_code: str,
    sub_msg: str,
) -> None:
    gateway.fail_next(fault)
    node = refused(await post(client, make()), alipay_key, code=code, sub_code=sub_code)
    assert (node["msg"], node["sub_msg"]) == (msg, sub_msg)
    assert (gateway.calls[-1].outcome, gateway.calls[-1].code) == (fault.name, code)


async def normal_body(make: SignedParams, gateway: SandboxGateway, biz: Mapping[str, Any] = BIZ) -> str:
    """The body the gateway gives when no fault is queued, for comparison (same clock, same signature)."""
    async with connect(gateway) as client:
        body = (await post(client, make(biz))).text
    gateway.calls.pop()
    return body


async def test_bad_signature_fault(
    client: httpx.AsyncClient, gateway: SandboxGateway, make: SignedParams, alipay_key: rsa.RSAPublicKey
) -> None:
    normal = split(await normal_body(make, gateway))
    gateway.fail_next(Fault.BAD_SIGNATURE)
    answer = split((await post(client, make())).text)
    assert answer.node_text == normal.node_text
    assert answer.sign is not None
    assert answer.sign != normal.sign
    assert len(base64.b64decode(answer.sign, validate=True)) == 256
    assert not verify(answer.node_text.encode(), answer.sign, alipay_key, SignType.RSA2)
    assert gateway.calls[-1].outcome == "BAD_SIGNATURE"


async def test_tampered_fault(
    client: httpx.AsyncClient, gateway: SandboxGateway, make: SignedParams, alipay_key: rsa.RSAPublicKey
) -> None:
    normal = split(await normal_body(make, gateway))
    gateway.fail_next(Fault.TAMPERED)
    answer = split((await post(client, make())).text)
    assert answer.sign == normal.sign
    assert answer.node["msg"] == "success"
    assert sum(a != b for a, b in zip(answer.node_text, normal.node_text, strict=True)) == 1
    assert not verify(answer.node_text.encode(), answer.sign or "", alipay_key, SignType.RSA2)


@pytest.mark.parametrize("biz", [BIZ, {"app_version": "9.9.9"}])
async def test_duplicate_node_fault(
    client: httpx.AsyncClient,
    gateway: SandboxGateway,
    make: SignedParams,
    alipay_key: rsa.RSAPublicKey,
    biz: Mapping[str, Any],
) -> None:
    normal = await normal_body(make, gateway, biz)
    gateway.fail_next(Fault.DUPLICATE_NODE)
    body = (await post(client, make(biz))).text
    assert body.startswith(normal[:-1] + f',"{METHOD_NODE}":{{')
    assert body.count(f'"{METHOD_NODE}":') == 2
    genuine = split(normal)
    assert verify(genuine.node_text.encode(), genuine.sign or "", alipay_key, SignType.RSA2)
    forged = json.loads(body)[METHOD_NODE]  # the trap: the last duplicate wins in json.loads
    assert (forged["code"], forged["app_name"]) == ("10000", "伪造的小程序")
    assert "sub_code" not in forged


@pytest.mark.parametrize("biz", [BIZ, {"app_version": "9.9.9"}])
async def test_unsigned_success_fault(
    client: httpx.AsyncClient, gateway: SandboxGateway, make: SignedParams, biz: Mapping[str, Any]
) -> None:
    gateway.fail_next(Fault.UNSIGNED_SUCCESS)
    answer = split((await post(client, make(biz))).text)
    assert (answer.node_name, answer.sign) == (METHOD_NODE, None)
    assert answer.node["code"] == "10000"
    assert "sub_code" not in answer.node


async def test_unsigned_error_fault(
    client: httpx.AsyncClient, gateway: SandboxGateway, make: SignedParams, alipay_key: rsa.RSAPublicKey
) -> None:
    gateway.fail_next(Fault.UNSIGNED_ERROR)
    response = await post(client, make())
    refused(response, alipay_key, code="40002", sub_code="isv.invalid-app-id", node_name=ERROR_NODE, signed=False)


@pytest.mark.parametrize(("fault", "status"), [(Fault.GARBAGE_BODY, 200), (Fault.HTTP_502, 502)])
async def test_html_faults(
    client: httpx.AsyncClient, gateway: SandboxGateway, make: SignedParams, fault: Fault, status: int
) -> None:
    gateway.fail_next(fault)
    response = await post(client, make())
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)
    assert (gateway.calls[-1].outcome, gateway.calls[-1].code) == (fault.name, None)


async def test_truncated_json_fault(client: httpx.AsyncClient, gateway: SandboxGateway, make: SignedParams) -> None:
    normal = (await normal_body(make, gateway)).encode()
    gateway.fail_next(Fault.TRUNCATED_JSON)
    response = await post(client, make())
    assert response.status_code == 200
    assert response.content == normal[: len(normal) // 2]
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content.decode("utf-8", "replace"))


async def test_slow_fault_answers_normally_after_the_delay(
    client: httpx.AsyncClient, gateway: SandboxGateway, make: SignedParams, alipay_key: rsa.RSAPublicKey
) -> None:
    gateway.fail_next(Fault.slow(0.05))
    started = time.monotonic()
    response = await post(client, make())
    assert time.monotonic() - started >= 0.05
    assert verified(response, alipay_key).node["code"] == "10000"
    assert (gateway.calls[-1].outcome, gateway.calls[-1].code) == ("SLOW", "10000")


async def test_max_in_flight_counts_overlapping_requests_only(
    client: httpx.AsyncClient, gateway: SandboxGateway, make: SignedParams
) -> None:
    await post(client, make())
    await post(client, make())
    assert gateway.max_in_flight == 1
    gateway.fail_next(Fault.slow(0.2), times=3)
    await asyncio.gather(*(post(client, make()) for _ in range(3)))
    assert gateway.max_in_flight == 3
    gateway.reset()
    assert gateway.max_in_flight == 0


def test_fault_constants() -> None:
    assert {getattr(Fault, kind.name).kind for kind in FaultKind} == set(FaultKind)
    assert Fault.SLOW.delay_s == 1.0
    assert Fault.BUSY.delay_s == 0.0
    with pytest.raises(ValueError, match="delay_s"):
        Fault.slow(-1)


async def test_wrong_key_fault(
    client: httpx.AsyncClient, gateway: SandboxGateway, make: SignedParams, alipay_key: rsa.RSAPublicKey
) -> None:
    gateway.fail_next(Fault.WRONG_KEY)
    answer = split((await post(client, make())).text)
    assert not verify(answer.node_text.encode(), answer.sign or "", alipay_key, SignType.RSA2)
    assert verify(answer.node_text.encode(), answer.sign or "", stranger_key().public_key(), SignType.RSA2)
    assert answer.node["code"] == "10000"


async def outcomes(client: httpx.AsyncClient, gateway: SandboxGateway, requests: list[dict[str, str]]) -> list[str]:
    for params in requests:
        await post(client, params)
    return [call.outcome for call in gateway.calls]


async def test_fault_times(client: httpx.AsyncClient, gateway: SandboxGateway, make: SignedParams) -> None:
    gateway.fail_next(Fault.BUSY, times=2)
    assert await outcomes(client, gateway, [make()] * 3) == ["BUSY", "BUSY", "ok"]


async def test_faults_fire_in_the_order_queued(
    client: httpx.AsyncClient, gateway: SandboxGateway, make: SignedParams
) -> None:
    gateway.fail_next(Fault.BUSY)
    gateway.fail_next(Fault.HTTP_502)
    assert await outcomes(client, gateway, [make()] * 3) == ["BUSY", "HTTP_502", "ok"]


async def test_fault_for_one_app_version(
    client: httpx.AsyncClient, gateway: SandboxGateway, make: SignedParams
) -> None:
    gateway.fail_next(Fault.SYSTEM_ERROR, app_version="0.0.2")
    v1, v2 = make(), make({"app_version": "0.0.2"})
    assert await outcomes(client, gateway, [v1, v2, v2]) == ["ok", "SYSTEM_ERROR", "ok"]


async def test_fault_for_any_version_hits_business_failures_too(
    client: httpx.AsyncClient, gateway: SandboxGateway, make: SignedParams
) -> None:
    gateway.fail_next(Fault.BUSY)
    gateway.fail_next(Fault.BUSY, app_version="0.0.1")
    assert await outcomes(client, gateway, [make({}), make({}), make()]) == ["BUSY", "business_error", "BUSY"]


async def test_refused_request_does_not_consume_a_fault(
    client: httpx.AsyncClient, gateway: SandboxGateway, make: SignedParams, creds: DemoCredentials
) -> None:
    gateway.fail_next(Fault.BUSY)
    bad = make(key=creds.alipay_private_key)
    assert await outcomes(client, gateway, [bad, make()]) == ["invalid-signature", "BUSY"]


def test_fail_next_needs_a_positive_count(gateway: SandboxGateway) -> None:
    with pytest.raises(ValueError, match="times"):
        gateway.fail_next(Fault.BUSY, times=0)


async def test_reset_clears_calls_and_faults(
    client: httpx.AsyncClient, gateway: SandboxGateway, make: SignedParams
) -> None:
    gateway.fail_next(Fault.BUSY, times=2)
    await post(client, make())
    gateway.reset()
    assert gateway.calls == []
    assert await outcomes(client, gateway, [make()]) == ["ok"]


# --- real HTTP ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lifespan", ["off", "auto"])
def test_served_over_real_http(
    gateway: SandboxGateway, make: SignedParams, alipay_key: rsa.RSAPublicKey, lifespan: Literal["off", "auto"]
) -> None:
    params = make()
    biz = params.pop("biz_content")
    with serve(gateway.app, lifespan=lifespan) as url, httpx.Client(base_url=url) as client:
        assert re.fullmatch(r"http://127\.0\.0\.1:[0-9]+", url)
        response = client.post("/gateway.do", params=params, data={"biz_content": biz})
    assert verified(response, alipay_key).node == {"code": "10000", "msg": "Success", **SEEDED_001}
    assert gateway.calls[-1].outcome == "ok"


def test_serve_reports_a_failed_startup() -> None:
    @asynccontextmanager
    async def broken(app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("startup fails")
        yield  # pragma: no cover

    with pytest.raises(RuntimeError, match="did not start"), serve(Starlette(lifespan=broken), lifespan="on"):
        pass  # pragma: no cover


# --- seed and credentials ----------------------------------------------------------------------------------


def test_seed_covers_five_versions_on_five_clients() -> None:
    versions = {"0.0.1", "0.0.2", "0.1.0", "1.0.0", "1.1.0-beta"}
    assert set(SEED_VERSIONS) == {(v, b) for v in versions for b in KNOWN_BUNDLE_IDS}
    assert len(RESPONSE_FIELDS) == len(set(RESPONSE_FIELDS)) == 30
    for (app_version, _), record in SEED_VERSIONS.items():
        assert record["app_version"] == app_version
        assert list(record) == [name for name in RESPONSE_FIELDS if name in record]
        if app_version == "0.0.1":
            assert list(record) == list(RESPONSE_FIELDS)
        json.dumps(dict(record))


def test_seed_has_variety() -> None:
    records = list(SEED_VERSIONS.values())

    def values(name: str) -> set[str]:
        return {r[name] for r in records if name in r}

    assert values("status") >= {"RELEASE", "GRAY", "AUDITING", "AUDIT_REJECT", "WAIT_RELEASE", "INIT", "OFFLINE"}
    assert values("gray_strategy") == {"p10", "p30"}
    assert values("scan_result") == {"True", "False", "NAN"}
    assert values("service_region_type") == {"GLOBLE", "CHINA", "LOCATION"}
    assert values("base_audit") == {"PASS", "REJECT"}
    assert {p["status"] for r in records for p in r.get("package_info_list", [])} >= {"VALID", "AUDIT"}
    assert any(r.get("screen_shot_list") == [] for r in records)
    assert any("gmt_offline" not in r for r in records)
    regions = [region for r in records for region in r.get("service_region_info", [])]
    assert ("浙江省", "杭州市", "余杭区") in {(x["province_name"], x["city_name"], x["area_name"]) for x in regions}
    rejected = SEED_VERSIONS["1.0.0", DEFAULT_BUNDLE_ID]
    assert rejected["reject_reason"]
    assert rejected["base_audit_record"]["memos"][0]["memo_image_list"]
    stamps = [r[k] for r in records for k in r if k.startswith("gmt_")]
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", s) for s in stamps)


def test_generated_credentials(
    creds: DemoCredentials, app_key: rsa.RSAPrivateKey, alipay_key: rsa.RSAPublicKey
) -> None:
    assert creds.app_id == DEMO_APP_ID
    assert re.fullmatch(r"[0-9]{16}", creds.app_id)
    assert creds.app_private_key_pem.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert creds.alipay_public_key_pem.startswith("-----BEGIN PUBLIC KEY-----")  # SPKI
    for public in (app_key.public_key(), creds.app_public_key, alipay_key, creds.alipay_private_key.public_key()):
        assert (public.key_size, public.public_numbers().e) == (2048, 65537)
    assert app_key.public_key().public_numbers() == creds.app_public_key.public_numbers()
    assert alipay_key.public_numbers() == creds.alipay_private_key.public_key().public_numbers()
    assert app_key.public_key().public_numbers() != alipay_key.public_numbers()
    assert "KEY" not in repr(creds)
    data = b"x"
    assert verify(data, sign(data, creds.alipay_private_key, SignType.RSA2), alipay_key, SignType.RSA2)


def test_credentials_for_another_app_id() -> None:
    assert generate_credentials("2021004100000000").app_id == "2021004100000000"
    assert stranger_key() is stranger_key()
