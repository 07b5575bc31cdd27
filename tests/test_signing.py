"""graph.gateway.signing: the string to sign, RSA/RSA2 signatures cross-checked with the official SDK, the timestamp."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from alipay.aop.api.util.SignatureUtils import get_sign_content, sign_with_rsa, sign_with_rsa2, verify_with_rsa
from cryptography.hazmat.primitives import hashes

from graph.gateway.signing import SignType, gateway_timestamp, sign, sign_content, sign_params, verify
from tests.keyfixtures import KeyMaterial, app_keys, other_keys

__all__ = ["app_keys", "other_keys"]  # session fixtures used by name below

ROOT = Path(__file__).resolve().parents[1]
SHANGHAI = ZoneInfo("Asia/Shanghai")
FORMAT = "%Y-%m-%d %H:%M:%S"

# The example from the protocol notes, verbatim.
EXAMPLE_CONTENT = (
    'app_id=2021004100000000&biz_content={"app_version":"0.0.1","bundle_id":"com.alipay.alipaywallet"}'
    "&charset=utf-8&format=json&method=alipay.open.mini.version.detail.query&sign_type=RSA2"
    "&timestamp=2026-11-29 00:41:29&version=1.0"
)
# The same parameters as a request builds them (insertion order is not sign order), with the signature in.
EXAMPLE_PARAMS = {
    "method": "alipay.open.mini.version.detail.query",
    "app_id": "2021004100000000",
    "version": "1.0",
    "timestamp": "2026-11-29 00:41:29",
    "sign_type": "RSA2",
    "format": "json",
    "charset": "utf-8",
    "biz_content": '{"app_version":"0.0.1","bundle_id":"com.alipay.alipaywallet"}',
    "sign": "c2lnbmF0dXJl",
}

# Parameter sets without empty values, where the SDK's string to sign and ours must agree.
PARAM_SETS: dict[str, dict[str, str]] = {
    "ascii": {k: v for k, v in EXAMPLE_PARAMS.items() if k != "sign"},
    "chinese": {
        "app_id": "2021004100000000",
        "method": "alipay.open.mini.version.detail.query",
        "biz_content": '{"app_version":"1.2.3","bundle_id":"com.alipay.alipaywallet","memo":"支付宝小程序 版本"}',
        "app_name": "测试应用",
        "timestamp": "2026-11-29 00:41:29",
        "sign_type": "RSA2",
    },
    "json": {
        "app_id": "2021004100000000",
        "biz_content": '{"a":{"b":[1,2,{"c":"d"}]},"e":null,"f":true,"g":"\\"q\\"","h":"\\/x"}',
        "charset": "utf-8",
        "format": "json",
        "version": "1.0",
    },
    "separators": {
        "app_id": "2021004100000000",
        "notify_url": "https://example.com/cb?a=1&b=2+3/4%20 ==",
        "return_url": "a&b=c+d/e",
        "biz_content": '{"q":"x=1&y=2","p":"+/="}',
        "timestamp": "2026-11-29 00:41:29",
    },
}


# ---------------------------------------------------------------------------------------------- sign_content


def test_sign_content_matches_the_protocol_example() -> None:
    assert sign_content(EXAMPLE_PARAMS) == EXAMPLE_CONTENT


def test_sign_content_round_trips_the_example() -> None:
    # Rebuild the mapping from the example text itself and sign it again: nothing is lost or added.
    params = dict(pair.split("=", 1) for pair in EXAMPLE_CONTENT.split("&"))
    assert params["biz_content"] == EXAMPLE_PARAMS["biz_content"]
    assert sign_content(params) == EXAMPLE_CONTENT


def test_sign_content_drops_empty_values() -> None:
    assert sign_content({"c": "3", "b": "", "a": "1", "app_auth_token": ""}) == "a=1&c=3"


def test_sign_content_keeps_whitespace_values() -> None:
    # Java's StringUtils.areNotEmpty only drops zero-length values.
    assert sign_content({"a": " ", "b": "x"}) == "a= &b=x"


def test_sign_content_excludes_sign_but_keeps_sign_type() -> None:
    content = sign_content({"sign": "abc", "sign_type": "RSA2", "app_id": "1"})
    assert content == "app_id=1&sign_type=RSA2"


def test_sign_content_sorts_by_code_point() -> None:
    params = {"b": "1", "ab": "2", "a_b": "3", "a": "4", "_": "5", "B": "6", "Z9": "7", "é": "8"}
    # 'B' < 'Z' < '_' < 'a' < 'b' < 'é'; 'a' < 'a_b' < 'ab' because '_' (0x5F) < 'b' (0x62).
    assert sign_content(params) == "B=6&Z9=7&_=5&a=4&a_b=3&ab=2&b=1&é=8"


def test_sign_content_uses_raw_values() -> None:
    params = {
        "biz_content": '{"name":"支付宝","q":"a=b&c=d"}',
        "notify_url": "https://example.com/x?y=1&z=2+3/4%20",
        "memo": "中文 text",
    }
    assert sign_content(params) == (
        'biz_content={"name":"支付宝","q":"a=b&c=d"}&memo=中文 text&notify_url=https://example.com/x?y=1&z=2+3/4%20'
    )


def test_sign_content_of_nothing_is_empty() -> None:
    assert sign_content({}) == ""
    assert sign_content({"sign": "x", "a": ""}) == ""


# ------------------------------------------------------------------------------------- signatures and the SDK


def test_sign_types_are_the_protocol_names() -> None:
    assert SignType("RSA2") is SignType.RSA2
    assert SignType("RSA") is SignType.RSA
    assert isinstance(SignType.RSA2.hash(), hashes.SHA256)
    assert isinstance(SignType.RSA.hash(), hashes.SHA1)


@pytest.mark.parametrize("sign_type", list(SignType))
def test_signature_is_one_line_padded_base64(app_keys: KeyMaterial, sign_type: SignType) -> None:
    signature = sign_params(EXAMPLE_PARAMS, app_keys.private, sign_type)
    assert "\n" not in signature
    assert len(signature) == 344  # 256 bytes, padded
    assert base64.b64decode(signature, validate=True)
    assert signature == sign_params(EXAMPLE_PARAMS, app_keys.private, sign_type)  # PKCS#1 v1.5 is deterministic


@pytest.mark.parametrize("name", sorted(PARAM_SETS))
def test_sdk_builds_the_same_content_without_empty_values(name: str) -> None:
    params = PARAM_SETS[name]
    assert sign_content(params) == get_sign_content(params)


@pytest.mark.parametrize("name", sorted(PARAM_SETS))
def test_rsa2_signature_is_byte_identical_to_the_sdk(app_keys: KeyMaterial, name: str) -> None:
    params = PARAM_SETS[name]
    ours = sign_params(params, app_keys.private, SignType.RSA2)
    assert ours == sign_with_rsa2(app_keys.pkcs1_b64, get_sign_content(params), "utf-8")


@pytest.mark.parametrize("name", sorted(PARAM_SETS))
def test_rsa_signature_is_byte_identical_to_the_sdk(app_keys: KeyMaterial, name: str) -> None:
    params = PARAM_SETS[name]
    ours = sign_params(params, app_keys.private, SignType.RSA)
    assert ours == sign_with_rsa(app_keys.pkcs1_b64, get_sign_content(params), "utf-8")


def test_empty_values_are_where_we_differ_from_the_sdk_on_purpose(app_keys: KeyMaterial) -> None:
    # The gateway (Java getSignContent) drops empty values; the Python SDK keeps them and signs a different text.
    params = {"app_id": "2021004100000000", "app_auth_token": "", "version": "1.0"}
    assert sign_content(params) == "app_id=2021004100000000&version=1.0"
    assert get_sign_content(params) == "app_auth_token=&app_id=2021004100000000&version=1.0"
    ours = sign_params(params, app_keys.private, SignType.RSA2)
    assert ours != sign_with_rsa2(app_keys.pkcs1_b64, get_sign_content(params), "utf-8")
    assert ours == sign_with_rsa2(app_keys.pkcs1_b64, sign_content(params), "utf-8")


@pytest.mark.parametrize("sign_type", list(SignType))
@pytest.mark.parametrize("name", sorted(PARAM_SETS))
def test_sdk_verifies_our_signatures(app_keys: KeyMaterial, name: str, sign_type: SignType) -> None:
    params = PARAM_SETS[name]
    signature = sign_params(params, app_keys.private, sign_type)
    assert verify_with_rsa(app_keys.spki_b64, sign_content(params).encode("utf-8"), signature) is True


@pytest.mark.parametrize(("sign_type", "sdk_sign"), [(SignType.RSA2, sign_with_rsa2), (SignType.RSA, sign_with_rsa)])
@pytest.mark.parametrize("name", sorted(PARAM_SETS))
def test_we_verify_the_sdks_signatures(app_keys: KeyMaterial, name: str, sign_type: SignType, sdk_sign: object) -> None:
    content = get_sign_content(PARAM_SETS[name])
    signature = sdk_sign(app_keys.pkcs1_b64, content, "utf-8")  # type: ignore[operator]
    assert verify(content.encode("utf-8"), signature, app_keys.public, sign_type) is True


def test_sdk_rejects_a_tampered_message(app_keys: KeyMaterial) -> None:
    # The cross-check above means something only if the SDK's verify can fail.
    signature = sign_params(EXAMPLE_PARAMS, app_keys.private, SignType.RSA2)
    tampered = EXAMPLE_CONTENT.replace("0.0.1", "0.0.2").encode("utf-8")
    with pytest.raises(Exception, match="Verification failed"):
        verify_with_rsa(app_keys.spki_b64, tampered, signature)


# ----------------------------------------------------------------------------------------------------- verify


@pytest.fixture(scope="module")
def signed(app_keys: KeyMaterial) -> tuple[bytes, str]:
    data = EXAMPLE_CONTENT.encode("utf-8")
    return data, sign(data, app_keys.private, SignType.RSA2)


def test_verify_accepts_a_good_signature(app_keys: KeyMaterial, signed: tuple[bytes, str]) -> None:
    data, signature = signed
    assert verify(data, signature, app_keys.public, SignType.RSA2) is True
    assert verify(data, f" {signature}\n", app_keys.public, SignType.RSA2) is True  # surrounding whitespace


def test_verify_rejects_a_tampered_message(app_keys: KeyMaterial, signed: tuple[bytes, str]) -> None:
    data, signature = signed
    assert verify(data + b" ", signature, app_keys.public, SignType.RSA2) is False
    assert verify(data.replace(b"0.0.1", b"0.0.2"), signature, app_keys.public, SignType.RSA2) is False


def test_verify_rejects_a_tampered_signature(app_keys: KeyMaterial, signed: tuple[bytes, str]) -> None:
    data, signature = signed
    raw = bytearray(base64.b64decode(signature))
    raw[100] ^= 1
    assert verify(data, base64.b64encode(raw).decode(), app_keys.public, SignType.RSA2) is False


def test_verify_rejects_another_keys_signature(
    app_keys: KeyMaterial, other_keys: KeyMaterial, signed: tuple[bytes, str]
) -> None:
    data, signature = signed
    assert verify(data, signature, other_keys.public, SignType.RSA2) is False
    theirs = sign(data, other_keys.private, SignType.RSA2)
    assert verify(data, theirs, app_keys.public, SignType.RSA2) is False


def test_verify_rejects_a_sign_type_mix_up(app_keys: KeyMaterial, signed: tuple[bytes, str]) -> None:
    data, rsa2_signature = signed
    rsa_signature = sign(data, app_keys.private, SignType.RSA)
    assert verify(data, rsa2_signature, app_keys.public, SignType.RSA) is False
    assert verify(data, rsa_signature, app_keys.public, SignType.RSA2) is False
    assert verify(data, rsa_signature, app_keys.public, SignType.RSA) is True


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "   ",
        "not base64 at all!",
        "@@@@",
        "abc",  # bad padding
        "AAAA",  # base64, far too short
        "签名",  # not ASCII
        "c2lnbmF0dXJl\x00",
    ],
)
def test_verify_returns_false_on_garbage(app_keys: KeyMaterial, garbage: str) -> None:
    assert verify(EXAMPLE_CONTENT.encode("utf-8"), garbage, app_keys.public, SignType.RSA2) is False


# ----------------------------------------------------------------------------------------------- timestamps


def test_gateway_timestamp_is_shanghai_wall_time() -> None:
    assert gateway_timestamp(datetime(2026, 11, 28, 16, 41, 29, tzinfo=UTC)) == "2026-11-29 00:41:29"


def test_gateway_timestamp_does_not_depend_on_the_callers_zone() -> None:
    new_york = datetime(2026, 11, 28, 11, 41, 29, tzinfo=ZoneInfo("America/New_York"))
    assert new_york == datetime(2026, 11, 28, 16, 41, 29, tzinfo=UTC)  # the same instant
    assert gateway_timestamp(new_york) == "2026-11-29 00:41:29"
    beijing = datetime(2026, 11, 29, 0, 41, 29, tzinfo=timezone(timedelta(hours=8)))
    assert gateway_timestamp(beijing) == "2026-11-29 00:41:29"


def test_gateway_timestamp_drops_fractions_of_a_second() -> None:
    assert gateway_timestamp(datetime(2026, 11, 28, 16, 41, 29, 999_999, tzinfo=UTC)) == "2026-11-29 00:41:29"


def test_gateway_timestamp_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="aware"):
        gateway_timestamp(datetime(2026, 11, 28, 16, 41, 29))  # noqa: DTZ001  (naive on purpose)


class _NoOffset(tzinfo):
    """A tzinfo that knows no offset: Python counts such a datetime as naive."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


def test_gateway_timestamp_refuses_a_tzinfo_without_an_offset() -> None:
    # astimezone() would read such a datetime as machine-local time: the zone leak this function exists to stop.
    moment = datetime(2026, 11, 28, 16, 41, 29, tzinfo=_NoOffset())
    assert (moment.utcoffset(), moment.dst(), moment.tzname()) == (None, None, None)
    with pytest.raises(ValueError, match="aware"):
        gateway_timestamp(moment)


CHILD = """
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo
from graph.gateway.signing import gateway_timestamp
print(gateway_timestamp(datetime.now(UTC)))
print(datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S"))
print(time.strftime("%z"))
"""


@pytest.mark.parametrize(("tz", "local_offsets"), [("UTC", {"+0000"}), ("America/Los_Angeles", {"-0800", "-0700"})])
def test_machine_zone_does_not_leak_into_the_timestamp(tz: str, local_offsets: set[str]) -> None:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "TZ": tz, "PYTHONPATH": path}
    before = datetime.now(UTC)
    result = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    after = datetime.now(UTC)
    stamp, shanghai, local_offset = result.stdout.splitlines()
    assert local_offset in local_offsets  # the child really ran in that zone
    ours = datetime.strptime(stamp, FORMAT).replace(tzinfo=SHANGHAI)
    theirs = datetime.strptime(shanghai, FORMAT).replace(tzinfo=SHANGHAI)
    assert abs(ours - theirs) <= timedelta(seconds=2)
    assert before - timedelta(seconds=1) <= ours <= after
