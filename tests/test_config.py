"""graph.config: Settings.from_environ, its defaults (docs/configuration.md) and every way a setting can be wrong."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from graph.config import DEFAULT_GATEWAY_URL, ConfigError, Settings
from graph.gateway.signing import SignType
from tests.keyfixtures import KeyMaterial, app_keys, other_keys

__all__ = ["app_keys", "other_keys"]  # session fixtures used by name below

APP_ID = "2021004100000000"
API_KEYS = ("k-live-3f9a0c8e7b6d5a4f", "k-ops-0a1b2c3d4e5f6a7b")


@pytest.fixture
def env(app_keys: KeyMaterial, other_keys: KeyMaterial) -> dict[str, str]:
    """Good credentials as Alipay's tools print them: bare PKCS#8 app key, bare SPKI Alipay key."""
    return {
        "ALIPAY_APP_ID": APP_ID,
        "ALIPAY_APP_PRIVATE_KEY": app_keys.pkcs8_b64,
        "ALIPAY_PUBLIC_KEY": other_keys.spki_b64,
    }


def _windows(text: str, width: int = 16) -> list[str]:
    body = "".join(line.strip() for line in text.splitlines() if not line.startswith("-----"))
    return [body[i : i + width] for i in range(len(body) - width + 1)]


def _assert_no_key_text(shown: str, *keys: str) -> None:
    for key in keys:
        for window in _windows(key):
            assert window not in shown, "key material leaked"


def _config_error(env: dict[str, str], *, demo: bool = False) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        Settings.from_environ(env, demo=demo)
    error = info.value
    assert "\n" not in str(error)  # one line
    return error


# --------------------------------------------------------------------------------------------- credentials


def test_good_credentials_from_the_environment(
    env: dict[str, str], app_keys: KeyMaterial, other_keys: KeyMaterial
) -> None:
    settings = Settings.from_environ(env)
    credentials = settings.credentials
    assert credentials is not None
    assert credentials.app_id == APP_ID
    assert credentials.sign_type is SignType.RSA2
    assert isinstance(credentials.private_key, rsa.RSAPrivateKey)
    assert credentials.private_key.private_numbers() == app_keys.private.private_numbers()
    assert credentials.alipay_public_key.public_numbers() == other_keys.public.public_numbers()
    assert settings.demo is False


def test_good_credentials_from_files(
    env: dict[str, str], tmp_path: Path, app_keys: KeyMaterial, other_keys: KeyMaterial
) -> None:
    private_file, public_file = tmp_path / "app_private_key.pem", tmp_path / "alipayPublicKey_RSA2.txt"
    private_file.write_text(app_keys.pkcs1_pem, encoding="utf-8")
    public_file.write_text(other_keys.spki_b64 + "\n", encoding="utf-8")
    del env["ALIPAY_APP_PRIVATE_KEY"], env["ALIPAY_PUBLIC_KEY"]
    env |= {"ALIPAY_APP_PRIVATE_KEY_FILE": f" {private_file} ", "ALIPAY_PUBLIC_KEY_FILE": str(public_file)}
    credentials = Settings.from_environ(env).credentials
    assert credentials is not None
    assert credentials.private_key.private_numbers() == app_keys.private.private_numbers()
    assert credentials.alipay_public_key.public_numbers() == other_keys.public.public_numbers()


def test_one_key_inline_and_the_other_from_a_file(env: dict[str, str], tmp_path: Path, other_keys: KeyMaterial) -> None:
    public_file = tmp_path / "alipay.pem"
    public_file.write_text(other_keys.spki_pem, encoding="utf-8")
    env["ALIPAY_PUBLIC_KEY"] = ""  # set but empty counts as unset
    env["ALIPAY_PUBLIC_KEY_FILE"] = str(public_file)
    assert Settings.from_environ(env).credentials is not None


def test_settings_read_os_environ_by_default(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("ALIPAY_APP_PRIVATE_KEY_FILE", "ALIPAY_PUBLIC_KEY_FILE", "ALIPAY_PROTOCOL", "GRAPH_API_KEYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GRAPH_MAX_BUNDLE_IDS", "3")
    settings = Settings.from_environ()
    assert settings.credentials is not None
    assert settings.credentials.app_id == APP_ID
    assert settings.max_bundle_ids == 3


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_app_id(env: dict[str, str], value: str | None) -> None:
    del env["ALIPAY_APP_ID"]
    if value is not None:
        env["ALIPAY_APP_ID"] = value
    assert str(_config_error(env)) == "ALIPAY_APP_ID is required unless --demo"


def test_app_id_is_trimmed(env: dict[str, str]) -> None:
    credentials = Settings.from_environ(env | {"ALIPAY_APP_ID": f" {APP_ID}\n"}).credentials
    assert credentials is not None
    assert credentials.app_id == APP_ID


@pytest.mark.parametrize("value", ["app-2021", "2021 0041", "1" * 33, "-2021", "2021.0"])
def test_app_id_must_be_numeric(env: dict[str, str], value: str) -> None:
    env["ALIPAY_APP_ID"] = value
    assert str(_config_error(env)).startswith("ALIPAY_APP_ID: expected the app's numeric id")


@pytest.mark.parametrize("name", ["ALIPAY_APP_PRIVATE_KEY", "ALIPAY_PUBLIC_KEY"])
def test_missing_key(env: dict[str, str], name: str) -> None:
    del env[name]
    assert str(_config_error(env)) == f"{name} (or {name}_FILE) is required unless --demo"


@pytest.mark.parametrize("name", ["ALIPAY_APP_PRIVATE_KEY", "ALIPAY_PUBLIC_KEY"])
def test_key_and_key_file_both_set(env: dict[str, str], tmp_path: Path, name: str) -> None:
    key_file = tmp_path / "key.pem"
    key_file.write_text(env[name], encoding="utf-8")
    env[f"{name}_FILE"] = str(key_file)
    error = _config_error(env)
    assert str(error) == f"{name} and {name}_FILE: set one, not both"
    _assert_no_key_text(str(error) + repr(error), env[name])


def _unreadable(tmp_path: Path) -> dict[str, Path]:
    not_utf8 = tmp_path / "latin1.pem"
    not_utf8.write_bytes(b"\xff\xfe\xe9 not utf-8 \xff")
    return {"missing": tmp_path / "nope.pem", "directory": tmp_path, "not utf-8": not_utf8}


@pytest.mark.parametrize("case", ["missing", "directory", "not utf-8"])
@pytest.mark.parametrize("name", ["ALIPAY_APP_PRIVATE_KEY", "ALIPAY_PUBLIC_KEY"])
def test_unreadable_key_file(env: dict[str, str], tmp_path: Path, name: str, case: str) -> None:
    path = _unreadable(tmp_path)[case]
    del env[name]
    env[f"{name}_FILE"] = str(path)
    error = _config_error(env)
    assert str(error).startswith(f"{name}_FILE: cannot read {path} (")
    assert error.__cause__ is None
    assert error.__suppress_context__


@pytest.mark.parametrize("form", ["bare", "pem"])
def test_bad_private_key_names_the_variable_and_quotes_nothing(
    env: dict[str, str], other_keys: KeyMaterial, form: str
) -> None:
    # The classic mix-up: a public key where the private one goes.
    bad = other_keys.spki_b64 if form == "bare" else other_keys.spki_pem
    env["ALIPAY_APP_PRIVATE_KEY"] = bad
    error = _config_error(env)
    assert str(error).startswith("ALIPAY_APP_PRIVATE_KEY: not a readable RSA private key")
    assert error.__cause__ is None
    assert error.__suppress_context__
    _assert_no_key_text(str(error) + repr(error), bad)


@pytest.mark.parametrize("form", ["bare", "pem"])
def test_private_key_pasted_as_alipays_public_key_is_not_quoted(
    env: dict[str, str], app_keys: KeyMaterial, form: str
) -> None:
    # The worst mix-up: the private key in the public key's variable. The error must not print it.
    bad = app_keys.pkcs8_b64 if form == "bare" else app_keys.pkcs1_pem
    env["ALIPAY_PUBLIC_KEY"] = bad
    error = _config_error(env)
    assert str(error).startswith("ALIPAY_PUBLIC_KEY: not a readable RSA public key")
    assert error.__cause__ is None
    assert error.__suppress_context__
    _assert_no_key_text(str(error) + repr(error), bad)


def test_bad_key_in_a_file_names_the_variable(env: dict[str, str], tmp_path: Path, app_keys: KeyMaterial) -> None:
    truncated = app_keys.pkcs8_pem[:400]
    key_file = tmp_path / "app.pem"
    key_file.write_text(truncated, encoding="utf-8")
    del env["ALIPAY_APP_PRIVATE_KEY"]
    env["ALIPAY_APP_PRIVATE_KEY_FILE"] = str(key_file)
    error = _config_error(env)
    assert str(error).startswith("ALIPAY_APP_PRIVATE_KEY_FILE: not a readable RSA private key")
    _assert_no_key_text(str(error) + repr(error), truncated)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("RSA", SignType.RSA), ("rsa2", SignType.RSA2), (" rsa ", SignType.RSA), ("", SignType.RSA2)],
)
def test_sign_type(env: dict[str, str], value: str, expected: SignType) -> None:
    env["ALIPAY_SIGN_TYPE"] = value
    credentials = Settings.from_environ(env).credentials
    assert credentials is not None
    assert credentials.sign_type is expected


@pytest.mark.parametrize("value", ["RSA3", "SHA256withRSA", "SM2"])
def test_bad_sign_type(env: dict[str, str], value: str) -> None:
    env["ALIPAY_SIGN_TYPE"] = value
    assert str(_config_error(env)) == "ALIPAY_SIGN_TYPE: expected RSA2 or RSA"


# ----------------------------------------------------------------------------------------------- defaults


def test_defaults_are_the_specs(env: dict[str, str]) -> None:
    settings = Settings.from_environ(env)
    assert settings.credentials is not None
    assert settings.credentials.sign_type is SignType.RSA2
    observed = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings) if f.name != "credentials"}
    assert observed == {
        "demo": False,
        "gateway_url": "https://openapi.alipay.com/gateway.do",
        "protocol": "v2",
        "timeout_s": 5.0,
        "retries": 2,
        "max_concurrency": 16,
        "cache_url": "memory://",
        "cache_ttl_s": 60.0,
        "cache_error_ttl_s": 10.0,
        "cache_max_entries": 10000,
        "cache_max_bytes": 32 * 1024 * 1024,
        "response_max_cached_bytes": 256 * 1024,
        "api_keys": frozenset(),
        "allow_anonymous": False,
        "introspection": True,
        "graphiql": True,
        "max_bundle_ids": 10,
        "max_upstream_calls": 30,
        "max_body_bytes": 65536,
        "rate_limit_per_min": 600,
        "auth_failures_per_min": 30,
        "max_depth": 15,
        "max_aliases": 30,
        "max_tokens": 2000,
        "allow_batching": False,
        "max_batch_operations": 10,
        "operation_deadline_s": 15.0,
        "breaker_failures": 5,
        "breaker_reset_s": 10.0,
        "log_format": "auto",
        "log_level": "INFO",
        "metrics_operations": frozenset(),
        "trace_query_text": False,
        "shutdown_grace_s": 20,
        "persisted_queries": "apq",
        "operations": None,
        "apq_max_documents": 10000,
        "apq_ttl_s": 86400.0,
        "request_read_timeout_s": 10.0,
        "max_connections": 0,
        "keep_alive_s": 5,
        "apq_max_document_bytes": 16 * 1024,
        "cache_min_refresh_s": 5.0,
        "cache_stale_s": 300.0,
        "max_calls_per_min": 600,
        "cache_signing_key": None,
    }
    assert DEFAULT_GATEWAY_URL == "https://openapi.alipay.com/gateway.do"


def test_empty_numbers_mean_the_default(env: dict[str, str]) -> None:
    blank = dict.fromkeys(
        ["ALIPAY_TIMEOUT_S", "ALIPAY_RETRIES", "GRAPH_MAX_CONCURRENCY", "GRAPH_MAX_BODY_BYTES", "ALIPAY_GATEWAY_URL"],
        " ",
    )
    settings = Settings.from_environ(env | blank | {"ALIPAY_GATEWAY_URL": ""})
    assert (settings.timeout_s, settings.retries, settings.max_concurrency, settings.max_body_bytes) == (
        5.0,
        2,
        16,
        65536,
    )
    assert settings.gateway_url == DEFAULT_GATEWAY_URL


# ------------------------------------------------------------------------------------------------- numbers

NUMBERS: list[tuple[str, str, str, float]] = [
    # variable, attribute, raw value, parsed value
    ("ALIPAY_TIMEOUT_S", "timeout_s", "2.5", 2.5),
    ("ALIPAY_TIMEOUT_S", "timeout_s", " 30 ", 30.0),
    ("ALIPAY_TIMEOUT_S", "timeout_s", "0.001", 0.001),
    ("ALIPAY_RETRIES", "retries", "0", 0),
    ("ALIPAY_RETRIES", "retries", "5", 5),
    ("GRAPH_MAX_CONCURRENCY", "max_concurrency", "1", 1),
    ("GRAPH_MAX_CONCURRENCY", "max_concurrency", "64", 64),
    ("GRAPH_MAX_BUNDLE_IDS", "max_bundle_ids", "1", 1),
    ("GRAPH_MAX_BUNDLE_IDS", "max_bundle_ids", "50", 50),
    ("GRAPH_MAX_UPSTREAM_CALLS", "max_upstream_calls", "1", 1),
    ("GRAPH_MAX_UPSTREAM_CALLS", "max_upstream_calls", "100", 100),
    ("GRAPH_MAX_BODY_BYTES", "max_body_bytes", "1024", 1024),
    ("GRAPH_MAX_BODY_BYTES", "max_body_bytes", "1048576", 1048576),
    ("GRAPH_RATE_LIMIT_PER_MIN", "rate_limit_per_min", "0", 0),
    ("GRAPH_RATE_LIMIT_PER_MIN", "rate_limit_per_min", "6000", 6000),
    ("GRAPH_AUTH_FAILURES_PER_MIN", "auth_failures_per_min", "0", 0),
    ("GRAPH_AUTH_FAILURES_PER_MIN", "auth_failures_per_min", "120", 120),
    ("GRAPH_MAX_DEPTH", "max_depth", "4", 4),
    ("GRAPH_MAX_ALIASES", "max_aliases", "0", 0),
    ("GRAPH_MAX_TOKENS", "max_tokens", "500", 500),
    ("GRAPH_MAX_BATCH_OPERATIONS", "max_batch_operations", "3", 3),
    ("GRAPH_OPERATION_DEADLINE_S", "operation_deadline_s", "2.5", 2.5),
    ("GRAPH_BREAKER_FAILURES", "breaker_failures", "0", 0),
    ("GRAPH_BREAKER_RESET_S", "breaker_reset_s", "0.5", 0.5),
    ("GRAPH_SHUTDOWN_GRACE_S", "shutdown_grace_s", "0", 0),
    ("GRAPH_SHUTDOWN_GRACE_S", "shutdown_grace_s", "45", 45),
    ("GRAPH_REQUEST_READ_TIMEOUT_S", "request_read_timeout_s", "2.5", 2.5),
    ("GRAPH_MAX_CONNECTIONS", "max_connections", "500", 500),
    ("GRAPH_KEEP_ALIVE_S", "keep_alive_s", "75", 75),
]


@pytest.mark.parametrize(("name", "attribute", "raw", "parsed"), NUMBERS)
def test_numbers_are_parsed(env: dict[str, str], name: str, attribute: str, raw: str, parsed: float) -> None:
    value = getattr(Settings.from_environ(env | {name: raw}), attribute)
    assert value == parsed
    assert type(value) is type(parsed)


BAD_NUMBERS: list[tuple[str, str, str]] = [
    # variable, raw value, what the message says
    ("ALIPAY_TIMEOUT_S", "fast", "expected a number"),
    ("ALIPAY_TIMEOUT_S", "5s", "expected a number"),
    ("ALIPAY_TIMEOUT_S", "0", "must be between 0.001 and 300"),
    ("ALIPAY_TIMEOUT_S", "-1", "must be between 0.001 and 300"),
    ("ALIPAY_TIMEOUT_S", "nan", "must be between 0.001 and 300"),
    ("ALIPAY_TIMEOUT_S", "inf", "must be between 0.001 and 300"),
    ("ALIPAY_RETRIES", "two", "expected a whole number"),
    ("ALIPAY_RETRIES", "1.5", "expected a whole number"),
    ("ALIPAY_RETRIES", "-1", "must be between 0 and 10"),
    ("ALIPAY_RETRIES", "11", "must be between 0 and 10"),
    ("GRAPH_MAX_CONCURRENCY", "0", "must be between 1 and 1024"),
    ("GRAPH_REQUEST_READ_TIMEOUT_S", "0", "must be between 0.1 and 600"),
    ("GRAPH_MAX_CONNECTIONS", "-1", "must be between 0 and 10000000"),
    ("GRAPH_KEEP_ALIVE_S", "0.5", "expected a whole number"),
    ("GRAPH_CACHE_TTL_S", "-1", "must be between 0 and 86400"),
    ("GRAPH_CACHE_ERROR_TTL_S", "soon", "expected a number"),
    ("GRAPH_CACHE_MAX_ENTRIES", "0", "must be between 1 and 100000000"),
    ("GRAPH_CACHE_MAX_BYTES", "65535", "must be between 65536 and 1099511627776"),
    ("GRAPH_CACHE_MAX_BYTES", "64MiB", "expected a whole number"),
    ("GRAPH_RESPONSE_MAX_CACHED_BYTES", "-1", "must be between 0 and 1000000000"),
    ("GRAPH_RESPONSE_MAX_CACHED_BYTES", "1e6", "expected a whole number"),
    ("GRAPH_APQ_MAX_DOCUMENT_BYTES", "63", "must be between 64 and 1000000000"),
    ("GRAPH_APQ_MAX_DOCUMENT_BYTES", "16k", "expected a whole number"),
    ("GRAPH_MAX_CONCURRENCY", "many", "expected a whole number"),
    ("GRAPH_MAX_BUNDLE_IDS", "0", "must be between 1 and 1000000000"),
    ("GRAPH_MAX_BUNDLE_IDS", "ten", "expected a whole number"),
    ("GRAPH_MAX_UPSTREAM_CALLS", "0", "must be between 1 and 1000000000"),
    ("GRAPH_MAX_UPSTREAM_CALLS", "2e1", "expected a whole number"),
    ("GRAPH_MAX_BODY_BYTES", "1023", "must be between 1024 and 1000000000"),
    ("GRAPH_MAX_BODY_BYTES", "64k", "expected a whole number"),
    ("GRAPH_RATE_LIMIT_PER_MIN", "-1", "must be between 0 and 1000000000"),
    ("GRAPH_RATE_LIMIT_PER_MIN", "10/s", "expected a whole number"),
    ("GRAPH_AUTH_FAILURES_PER_MIN", "-1", "must be between 0 and 1000000000"),
    ("GRAPH_MAX_DEPTH", "0", "must be between 1 and 200"),
    ("GRAPH_MAX_DEPTH", "201", "must be between 1 and 200"),
    ("GRAPH_MAX_ALIASES", "-1", "must be between 0 and 100000"),
    ("GRAPH_MAX_TOKENS", "9", "must be between 10 and 1000000"),
    ("GRAPH_MAX_BATCH_OPERATIONS", "0", "must be between 1 and 1000"),
    ("GRAPH_OPERATION_DEADLINE_S", "0", "must be between 0.01 and 3600"),
    ("GRAPH_OPERATION_DEADLINE_S", "soon", "expected a number"),
    ("GRAPH_BREAKER_FAILURES", "-1", "must be between 0 and 10000"),
    ("GRAPH_BREAKER_RESET_S", "0", "must be between 0.01 and 3600"),
    ("GRAPH_SHUTDOWN_GRACE_S", "2.5", "expected a whole number"),
    ("GRAPH_SHUTDOWN_GRACE_S", "3601", "must be between 0 and 3600"),
]


@pytest.mark.parametrize(("name", "raw", "message"), BAD_NUMBERS)
def test_bad_numbers_name_the_variable(env: dict[str, str], name: str, raw: str, message: str) -> None:
    assert str(_config_error(env | {name: raw})).startswith(f"{name}: {message}")


# --------------------------------------------------------------------------------------------------- flags

FLAGS = [
    ("GRAPH_ALLOW_ANONYMOUS", "allow_anonymous"),
    ("GRAPH_INTROSPECTION", "introspection"),
    ("GRAPH_GRAPHIQL", "graphiql"),
    ("GRAPH_ALLOW_BATCHING", "allow_batching"),
    ("GRAPH_TRACE_QUERY_TEXT", "trace_query_text"),
]


@pytest.mark.parametrize(("name", "attribute"), FLAGS)
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        *[(v, True) for v in ("1", "true", "TRUE", "yes", "On", " true ")],
        *[(v, False) for v in ("0", "false", "False", "no", "OFF")],
    ],
)
def test_flags_are_parsed(env: dict[str, str], name: str, attribute: str, raw: str, expected: bool) -> None:
    assert getattr(Settings.from_environ(env | {name: raw}), attribute) is expected


@pytest.mark.parametrize(("name", "attribute"), FLAGS)
@pytest.mark.parametrize("raw", ["", "  "])
def test_empty_flags_mean_the_default(env: dict[str, str], name: str, attribute: str, raw: str) -> None:
    assert getattr(Settings.from_environ(env | {name: raw}), attribute) == getattr(
        Settings.from_environ(env), attribute
    )


@pytest.mark.parametrize("app_id", ["\uff12\uff10\uff12\uff11", "2021\u00b2", "2021-0041", "2" * 33])
def test_app_id_is_ascii_digits(env: dict[str, str], app_id: str) -> None:
    assert str(_config_error(env | {"ALIPAY_APP_ID": app_id})).startswith("ALIPAY_APP_ID: expected")


@pytest.mark.parametrize("name", [name for name, _ in FLAGS])
@pytest.mark.parametrize("raw", ["2", "maybe", "enabled", "t", "y"])
def test_bad_flags_name_the_variable(env: dict[str, str], name: str, raw: str) -> None:
    assert str(_config_error(env | {name: raw})) == f"{name}: expected true or false"


# ----------------------------------------------------------------------------------------- other settings


@pytest.mark.parametrize(
    "text",
    [
        f"{API_KEYS[0]}\n{API_KEYS[1]}\n",
        f"  {API_KEYS[0]} \r\n\n{API_KEYS[1]}",
        f"{API_KEYS[0]},{API_KEYS[1]}",
        f"{API_KEYS[0]},\n{API_KEYS[1]},",
    ],
)
def test_api_keys_from_a_file(env: dict[str, str], tmp_path: Path, text: str) -> None:
    keys_file = tmp_path / "api-keys"
    keys_file.write_text(text, encoding="utf-8")
    assert Settings.from_environ(env | {"GRAPH_API_KEYS_FILE": str(keys_file)}).api_keys == frozenset(API_KEYS)


def test_api_keys_file_problems_are_named_never_quoted(env: dict[str, str], tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    error = _config_error(env | {"GRAPH_API_KEYS_FILE": str(missing)})
    assert str(error) == f"GRAPH_API_KEYS_FILE: cannot read {missing} (FileNotFoundError)"
    both = _config_error(env | {"GRAPH_API_KEYS_FILE": str(missing), "GRAPH_API_KEYS": API_KEYS[0]})
    assert str(both) == "GRAPH_API_KEYS and GRAPH_API_KEYS_FILE: set one, not both"
    inline = _config_error(env | {"GRAPH_API_KEYS": f"{API_KEYS[0]},caf\u00e9-{API_KEYS[1]}"})
    assert str(inline) == "GRAPH_API_KEYS: key number 2 holds characters other than visible ASCII"
    assert API_KEYS[1] not in str(inline)


def test_an_empty_keys_file_means_closed(env: dict[str, str], tmp_path: Path) -> None:
    keys_file = tmp_path / "api-keys"
    keys_file.write_text("\n\n", encoding="utf-8")
    assert Settings.from_environ(env | {"GRAPH_API_KEYS_FILE": str(keys_file)}).closed


def test_api_keys_are_split_and_trimmed(env: dict[str, str]) -> None:
    settings = Settings.from_environ(env | {"GRAPH_API_KEYS": f" {API_KEYS[0]} ,,{API_KEYS[1]}, ,"})
    assert settings.api_keys == frozenset(API_KEYS)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/gateway.do", "https://openapi-sandbox.dl.alipaydev.com/gateway.do", " https://x.test/g "],
)
def test_gateway_url(env: dict[str, str], url: str) -> None:
    assert Settings.from_environ(env | {"ALIPAY_GATEWAY_URL": url}).gateway_url == url.strip()


@pytest.mark.parametrize(
    "url", ["openapi.alipay.com/gateway.do", "ftp://openapi.alipay.com/gateway.do", "https://", "javascript:alert(1)"]
)
def test_gateway_url_must_be_http(env: dict[str, str], url: str) -> None:
    assert str(_config_error(env | {"ALIPAY_GATEWAY_URL": url})).startswith(
        "ALIPAY_GATEWAY_URL: expected an http(s) URL"
    )


@pytest.mark.parametrize(("raw", "expected"), [("text", "text"), (" JSON ", "json"), ("Auto", "auto"), ("", "auto")])
def test_log_format(env: dict[str, str], raw: str, expected: str) -> None:
    assert Settings.from_environ(env | {"GRAPH_LOG_FORMAT": raw}).log_format == expected


def test_bad_log_format(env: dict[str, str]) -> None:
    assert str(_config_error(env | {"GRAPH_LOG_FORMAT": "xml"})) == "GRAPH_LOG_FORMAT: expected auto, json or text"


@pytest.mark.parametrize(("raw", "expected"), [("debug", "DEBUG"), (" Warning ", "WARNING"), ("CRITICAL", "CRITICAL")])
def test_log_level(env: dict[str, str], raw: str, expected: str) -> None:
    assert Settings.from_environ(env | {"GRAPH_LOG_LEVEL": raw}).log_level == expected


@pytest.mark.parametrize("raw", ["verbose", "10", "trace"])
def test_bad_log_level(env: dict[str, str], raw: str) -> None:
    assert str(_config_error(env | {"GRAPH_LOG_LEVEL": raw})).startswith("GRAPH_LOG_LEVEL: expected DEBUG, INFO")


# --------------------------------------------------------------------------------------------- demo, closed


def test_demo_needs_no_credentials_and_lets_everyone_in() -> None:
    settings = Settings.from_environ({"GRAPH_ALLOW_ANONYMOUS": "false"}, demo=True)
    assert settings.demo is True
    assert settings.credentials is None
    assert settings.allow_anonymous is True
    assert settings.closed is False


def test_demo_ignores_configured_credentials(env: dict[str, str]) -> None:
    settings = Settings.from_environ(env | {"ALIPAY_APP_PRIVATE_KEY": "not a key"}, demo=True)
    assert settings.credentials is None


def test_demo_still_checks_the_other_settings() -> None:
    assert str(_config_error({"ALIPAY_RETRIES": "x"}, demo=True)).startswith("ALIPAY_RETRIES:")


def test_closed_by_default_with_real_credentials(env: dict[str, str]) -> None:
    assert Settings.from_environ(env).closed is True
    assert Settings.from_environ(env | {"GRAPH_API_KEYS": API_KEYS[0]}).closed is False
    assert Settings.from_environ(env | {"GRAPH_ALLOW_ANONYMOUS": "true"}).closed is False
    assert Settings.from_environ(env | {"GRAPH_API_KEYS": " , "}).closed is True


# ----------------------------------------------------------------------------------------------- protocol


@pytest.mark.parametrize(("raw", "protocol"), [("v2", "v2"), (" V2 ", "v2"), ("", "v2"), ("v3", "v3"), ("V3", "v3")])
def test_protocol(env: dict[str, str], raw: str, protocol: str) -> None:
    settings = Settings.from_environ(env | {"ALIPAY_PROTOCOL": raw})
    assert settings.protocol == protocol
    # Each protocol has its own default endpoint: v3 appends its paths to a base URL.
    assert settings.gateway_url == {"v2": DEFAULT_GATEWAY_URL, "v3": "https://openapi.alipay.com"}[protocol]


@pytest.mark.parametrize("raw", ["x", "v1", "3"])
def test_unknown_protocol(env: dict[str, str], raw: str) -> None:
    assert str(_config_error(env | {"ALIPAY_PROTOCOL": raw})) == "ALIPAY_PROTOCOL: expected v2 or v3"
    assert str(_config_error({"ALIPAY_PROTOCOL": raw}, demo=True)) == "ALIPAY_PROTOCOL: expected v2 or v3"


@pytest.mark.parametrize("empty", ["ALIPAY_APP_CERT_FILE", "ALIPAY_ENCRYPT_KEY", "ALIPAY_ENCRYPT_KEY_FILE"])
def test_empty_cert_and_aes_variables_are_ignored(env: dict[str, str], empty: str) -> None:
    credentials = Settings.from_environ(env | {empty: " "}).credentials
    assert credentials is not None
    assert (credentials.certs, credentials.encrypt_key) == (None, None)


# ---------------------------------------------------------------------------------------------------- reprs


def test_reprs_hold_no_secrets(env: dict[str, str], app_keys: KeyMaterial, other_keys: KeyMaterial) -> None:
    settings = Settings.from_environ(env | {"GRAPH_API_KEYS": ",".join(API_KEYS)})
    assert settings.credentials is not None
    for shown in (repr(settings), str(settings), repr(settings.credentials), str(settings.credentials)):
        _assert_no_key_text(shown, app_keys.pkcs8_pem, app_keys.pkcs1_pem, other_keys.spki_pem)
        for api_key in API_KEYS:
            assert api_key not in shown
        assert "PRIVATE" not in shown
        assert "RSAPrivateKey" not in shown
    assert repr(settings.credentials) == f"Credentials(app_id='{APP_ID}', sign_type=RSA2)"
    assert APP_ID in repr(settings)  # what is not secret is still there to debug with


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", "memory://"),
        ("memory://", "memory://"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:s3cret@cache.internal:6380/2", "redis://:s3cret@cache.internal:6380/2"),
        ("redis://cache", "redis://cache"),
    ],
)
def test_cache_url(env: dict[str, str], raw: str, expected: str) -> None:
    settings = Settings.from_environ(env | {"GRAPH_CACHE_URL": raw})
    assert settings.cache_url == expected
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    "raw",
    ["memcached://x", "redis://", "redis://:pw@host:notaport/0", "redis://host/zero", "redis://h/0?x=1", "http://h"],
)
def test_bad_cache_url_is_named_not_quoted(env: dict[str, str], raw: str) -> None:
    message = str(_config_error(env | {"GRAPH_CACHE_URL": raw}))
    assert message.startswith("GRAPH_CACHE_URL: expected memory://")
    assert raw == "redis://" or raw not in message


def test_metrics_operation_names(env: dict[str, str]) -> None:
    settings = Settings.from_environ(env | {"GRAPH_METRICS_OPERATIONS": " Release, Status ,,_private2 "})
    assert settings.metrics_operations == frozenset({"Release", "Status", "_private2"})


@pytest.mark.parametrize("raw", ["Release,not-a-name", "1st", "a b", ",".join(f"op{i}" for i in range(201))])
def test_bad_metrics_operation_names(env: dict[str, str], raw: str) -> None:
    message = str(_config_error(env | {"GRAPH_METRICS_OPERATIONS": raw}))
    assert message.startswith("GRAPH_METRICS_OPERATIONS: expected at most 200")


# ------------------------------------------------------------------------------------------ start-up summary


def test_summary_says_what_runs_and_nothing_secret(env: dict[str, str], app_keys: KeyMaterial) -> None:
    settings = Settings.from_environ(
        env
        | {
            "GRAPH_API_KEYS": ",".join(API_KEYS),
            "GRAPH_CACHE_URL": "redis://:s3cret@cache.internal:6380/2",
            "ALIPAY_GATEWAY_URL": "https://user:pw@openapi-sandbox.dl.alipaydev.com/gateway.do",
        }
    )
    summary = settings.summary()
    assert summary["app_id"] == APP_ID
    assert summary["gateway"] == "openapi-sandbox.dl.alipaydev.com"
    assert summary["cache"] == "redis cache.internal:6380/2"
    assert summary["auth"] == "api keys (2)"
    assert (summary["retries"], summary["max_concurrency"], summary["shutdown_grace_s"]) == (2, 16, 20)
    assert (summary["rate_limit_per_min"], summary["breaker"], summary["batching"]) == (600, "5 failures, 10 s", "off")
    assert summary["cache_max_bytes"] == 32 * 1024 * 1024
    shown = repr(summary)
    for secret in (*API_KEYS, "s3cret", "pw@"):
        assert secret not in shown
    _assert_no_key_text(shown, app_keys.pkcs8_pem)


def test_summary_of_the_other_modes(env: dict[str, str]) -> None:
    local = Settings.from_environ(env | {"ALIPAY_GATEWAY_URL": "http://127.0.0.1:8080/gateway.do"}).summary()
    assert (local["gateway"], local["cache"], local["auth"]) == ("127.0.0.1:8080", "memory", "closed")
    assert Settings.from_environ(env | {"GRAPH_CACHE_URL": "redis://cache"}).summary()["cache"] == "redis cache/0"
    demo = Settings.from_environ({}, demo=True).summary()
    assert (demo["app_id"], demo["gateway"], demo["auth"]) == ("demo", "in-process sandbox", "anonymous")


# ------------------------------------------------------------------------------------------- persisted queries

MANIFEST_BODY = "query A {\n  a\n}"


def _manifest(tmp_path: Path, text: str) -> str:
    path = tmp_path / "manifest.json"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(("raw", "mode"), [("", "apq"), ("APQ", "apq"), (" off ", "off")])
def test_persisted_query_modes(env: dict[str, str], raw: str, mode: str) -> None:
    assert Settings.from_environ({**env, "GRAPH_PERSISTED_QUERIES": raw}).persisted_queries == mode


def test_unknown_persisted_query_mode(env: dict[str, str]) -> None:
    error = _config_error({**env, "GRAPH_PERSISTED_QUERIES": "allowlist"})
    assert str(error) == "GRAPH_PERSISTED_QUERIES: expected off, apq or safelist"


def test_safelist_reads_the_manifest(env: dict[str, str], tmp_path: Path) -> None:
    operation = {"id": "abc", "name": "A", "type": "query", "body": MANIFEST_BODY}
    path = _manifest(
        tmp_path, json.dumps({"format": "apollo-persisted-query-manifest", "version": 1, "operations": [operation]})
    )
    settings = Settings.from_environ({**env, "GRAPH_PERSISTED_QUERIES": "safelist", "GRAPH_OPERATIONS_FILE": path})
    assert settings.persisted_queries == "safelist"
    assert settings.operations is not None
    assert settings.operations.by_id["abc"].body == MANIFEST_BODY
    assert "query A" not in repr(settings)  # the manifest stays out of the repr (and the log)
    assert settings.summary()["persisted_queries"] == "safelist (1 operations)"
    assert Settings.from_environ(env).summary()["persisted_queries"] == "apq"


def test_safelist_needs_a_manifest(env: dict[str, str]) -> None:
    error = _config_error({**env, "GRAPH_PERSISTED_QUERIES": "safelist"})
    assert str(error) == "GRAPH_OPERATIONS_FILE is required with GRAPH_PERSISTED_QUERIES=safelist"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "GRAPH_OPERATIONS_FILE: cannot read"),
        ("{not json", "GRAPH_OPERATIONS_FILE: {path}: not JSON (line 1, column 2)"),
        ('{"operations": []}', 'GRAPH_OPERATIONS_FILE: {path}: expected {{"format": "apollo-persisted-query-manifest"'),
    ],
)
def test_a_bad_manifest_stops_start_up_naming_the_variable(
    env: dict[str, str], tmp_path: Path, text: str | None, message: str
) -> None:
    path = _manifest(tmp_path, text) if text is not None else str(tmp_path / "missing.json")
    error = _config_error({**env, "GRAPH_PERSISTED_QUERIES": "safelist", "GRAPH_OPERATIONS_FILE": path})
    assert str(error).startswith(message.format(path=path))


def test_a_manifest_with_persisted_queries_off_is_a_mistake(env: dict[str, str], tmp_path: Path) -> None:
    path = _manifest(tmp_path, "{}")
    error = _config_error({**env, "GRAPH_PERSISTED_QUERIES": "off", "GRAPH_OPERATIONS_FILE": path})
    assert str(error) == "GRAPH_OPERATIONS_FILE: persisted queries are off (GRAPH_PERSISTED_QUERIES=off)"


def test_apq_store_settings(env: dict[str, str]) -> None:
    settings = Settings.from_environ({**env, "GRAPH_APQ_MAX_DOCUMENTS": "50", "GRAPH_APQ_TTL_S": "300"})
    assert (settings.apq_max_documents, settings.apq_ttl_s) == (50, 300.0)
    assert "GRAPH_APQ_MAX_DOCUMENTS" in str(_config_error({**env, "GRAPH_APQ_MAX_DOCUMENTS": "0"}))
    assert "GRAPH_APQ_TTL_S" in str(_config_error({**env, "GRAPH_APQ_TTL_S": "forever"}))


def test_memory_bound_settings(env: dict[str, str]) -> None:
    settings = Settings.from_environ(
        {
            **env,
            "GRAPH_CACHE_MAX_BYTES": str(8 << 20),
            "GRAPH_RESPONSE_MAX_CACHED_BYTES": "0",  # no response is kept
            "GRAPH_APQ_MAX_DOCUMENT_BYTES": "4096",
        }
    )
    assert (settings.cache_max_bytes, settings.response_max_cached_bytes) == (8 << 20, 0)
    assert settings.apq_max_document_bytes == 4096


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("GRAPH_CACHE_MAX_BYTES", "cache_max_bytes"),
        ("GRAPH_CACHE_MAX_ENTRIES", "cache_max_entries"),
        ("GRAPH_RESPONSE_MAX_CACHED_BYTES", "response_max_cached_bytes"),
        ("GRAPH_APQ_MAX_DOCUMENTS", "apq_max_documents"),
        ("GRAPH_APQ_MAX_DOCUMENT_BYTES", "apq_max_document_bytes"),
    ],
)
def test_the_docs_state_the_memory_defaults(name: str, field: str) -> None:
    # tests/test_docs.py checks every default; these are the ones docs/caching.md's figures depend on.
    table = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text(encoding="utf-8")
    row = next(line for line in table.splitlines() if line.startswith(f"| `{name}` |"))
    assert row.split("|")[-2].strip().split()[0] == f"`{getattr(Settings(credentials=None), field)}`"


# ------------------------------------------------------------------------------------------ cache signing key

SIGNING_KEY = "cfg-signing-key-7d1e9b3a5c2f4e6a8b0d"  # 36 bytes


def test_cache_signing_key_inline_or_from_a_file(env: dict[str, str], tmp_path: Path) -> None:
    assert Settings.from_environ(env).cache_signing_key is None  # derived from the app private key
    assert Settings.from_environ({**env, "GRAPH_CACHE_SIGNING_KEY": SIGNING_KEY}).cache_signing_key == (
        SIGNING_KEY.encode()
    )
    key_file = tmp_path / "signing.key"
    key_file.write_text(SIGNING_KEY + "\n", encoding="utf-8")  # as `openssl rand -base64 32 > file` leaves it
    settings = Settings.from_environ({**env, "GRAPH_CACHE_SIGNING_KEY_FILE": str(key_file)})
    assert settings.cache_signing_key == SIGNING_KEY.encode()
    assert SIGNING_KEY not in repr(settings) + str(settings)
    redis = {**env, "GRAPH_CACHE_URL": "redis://cache"}
    assert Settings.from_environ(redis).summary()["cache_signing"] == "derived from the app private key"
    keyed = Settings.from_environ({**redis, "GRAPH_CACHE_SIGNING_KEY": SIGNING_KEY}).summary()
    assert keyed["cache_signing"] == "GRAPH_CACHE_SIGNING_KEY"
    assert SIGNING_KEY not in repr(keyed)
    assert Settings.from_environ(env).summary()["cache_signing"] == "off (memory)"


def test_cache_signing_key_problems_are_named_never_quoted(env: dict[str, str], tmp_path: Path) -> None:
    short, long = "short-signing-key-0123456789abc", "x" * 1025  # 31 bytes; over the 1 KiB bound
    assert len(short) == 31
    key_file = tmp_path / "signing.key"
    key_file.write_text(short, encoding="utf-8")
    rule = "expected a secret of 32 to 1024 bytes (e.g. the output of openssl rand -base64 32)"
    cases = [
        ({"GRAPH_CACHE_SIGNING_KEY": short}, "GRAPH_CACHE_SIGNING_KEY: " + rule),
        ({"GRAPH_CACHE_SIGNING_KEY": long}, "GRAPH_CACHE_SIGNING_KEY: " + rule),
        ({"GRAPH_CACHE_SIGNING_KEY_FILE": str(key_file)}, "GRAPH_CACHE_SIGNING_KEY_FILE: " + rule),
        (
            {"GRAPH_CACHE_SIGNING_KEY": SIGNING_KEY, "GRAPH_CACHE_SIGNING_KEY_FILE": str(key_file)},
            "GRAPH_CACHE_SIGNING_KEY and GRAPH_CACHE_SIGNING_KEY_FILE: set one, not both",
        ),
        (
            {"GRAPH_CACHE_SIGNING_KEY_FILE": str(tmp_path / "missing")},
            f"GRAPH_CACHE_SIGNING_KEY_FILE: cannot read {tmp_path / 'missing'} (FileNotFoundError)",
        ),
    ]
    for changes, message in cases:
        error = _config_error({**env, **changes})
        assert str(error) == message
        assert short not in str(error)
        assert SIGNING_KEY not in str(error)
        assert "xxxxxxxx" not in str(error)
    unreadable = tmp_path / "binary.key"
    unreadable.write_bytes(b"\xff" * 40)
    error = _config_error({**env, "GRAPH_CACHE_SIGNING_KEY_FILE": str(unreadable)})
    assert str(error) == f"GRAPH_CACHE_SIGNING_KEY_FILE: cannot read {unreadable} (UnicodeDecodeError)"
