"""Log lines: JSON objects (or text) on stderr, extras included, httpx kept quiet; one per request and attempt."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable

import httpx
import pytest

from graph.observability import logs
from graph.sandbox import DemoCredentials, Fault, SandboxGateway
from tests.conftest import MERCHANT_TOKEN


@pytest.fixture
def restore_logging() -> object:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("httpx").level, logging.getLogger("httpcore").level)
    yield None
    root.handlers[:], level, httpx_level, httpcore_level = saved
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(httpx_level)
    logging.getLogger("httpcore").setLevel(httpcore_level)


def test_json_lines(restore_logging: object, capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("json", "DEBUG")
    log = logging.getLogger("graph.test")
    log.info("hello %s", "世界", extra={"request_id": "r1", "duration_ms": 1.5})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[0]["message"] == "hello 世界"
    assert lines[0]["request_id"] == "r1"
    assert lines[0]["level"] == "INFO"
    assert lines[0]["time"].endswith("+00:00")
    assert "ValueError: boom" in lines[1]["exception"]
    assert logging.getLogger("httpx").level == logging.WARNING


def test_text_lines(restore_logging: object, capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("text", "INFO")
    logging.getLogger("graph.test").warning("careful", extra={"attempt": 2})
    logging.getLogger("graph.test").warning("plain")
    logging.getLogger("graph.test").debug("hidden")
    err = capsys.readouterr().err
    assert "WARNING graph.test: careful attempt=2" in err
    assert err.rstrip().endswith("WARNING graph.test: plain")
    assert "hidden" not in err
    assert logging.getLogger().handlers[0].stream is sys.stderr  # type: ignore[attr-defined]


API_KEY = "k-log-test-5e8d1c0b9a7f6e5d"


async def read_until(capsys: pytest.CaptureFixture[str], needle: str) -> str:
    """stderr so far, once it holds ``needle``: a request's line is written just after its response is sent."""
    err = ""
    for _ in range(500):
        err += capsys.readouterr().err
        if needle in err:
            return err
        await asyncio.sleep(0.01)
    raise AssertionError(f"{needle!r} was never logged")


STATUS = "query Status($v: String!) { miniAppVersion(appVersion: $v) { status } }"


async def test_request_and_gateway_attempt_lines(
    start_app: Callable[..., str],
    sandbox: SandboxGateway,
    demo_credentials: DemoCredentials,
    restore_logging: object,  # after the app's fixture: logging is restored before the app stops
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("json", "INFO")
    url = start_app(allow_anonymous=False, api_keys=frozenset({API_KEY}))
    auth = {"Authorization": f"Bearer {API_KEY}", "X-Alipay-App-Auth-Token": MERCHANT_TOKEN}
    sandbox.fail_next(Fault.BUSY, times=1)
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        for request_id, query in [("req-1", STATUS), ("req-2", STATUS), ("req-3", "{ miniAppVersion( }")]:
            body = {"query": query, "variables": {"v": "0.0.1"}}
            await http.post("/graphql", json=body, headers={**auth, "X-Request-Id": request_id})
        await http.post("/graphql", json={"query": STATUS}, headers={"X-Request-Id": "req-4"})
    err = await read_until(capsys, '"request_id":"req-4"')
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    requests = {line["request_id"]: line for line in lines if line["message"] == "request"}

    first = requests["req-1"]
    assert first["logger"] == "graph.http"
    assert (first["method"], first["path"], first["status"]) == ("POST", "/graphql", 200)
    assert (first["operation"], first["outcome"], first["gateway_calls"], first["cache_hits"]) == ("Status", "ok", 2, 0)
    assert isinstance(first["duration_ms"], float)
    assert first["response_cache"] == "miss"
    second = requests["req-2"]  # the same request again: the whole response replayed, named as it was
    assert (second["operation"], second["outcome"], second["response_cache"]) == ("Status", "ok", "hit")
    assert (second["gateway_calls"], second["cache_hits"]) == (0, 0)
    third = requests["req-3"]  # a syntax error: no name to tell, and nothing executed
    assert (third["operation"], third["outcome"], third["gateway_calls"]) == ("anonymous", "error", 0)
    refused = requests["req-4"]
    assert (refused["status"], refused["operation"], refused["outcome"]) == (401, None, "refused")

    attempts = [line for line in lines if line["message"] == "gateway attempt"]
    assert [(a["request_id"], a["attempt"], a["outcome"]) for a in attempts] == [
        ("req-1", 1, "unavailable"),
        ("req-1", 2, "success"),
    ]
    assert attempts[0]["method"] == "alipay.open.mini.version.detail.query"
    assert "retry_in_s" in attempts[0]
    assert "retry_in_s" not in attempts[1]
    assert all(isinstance(a["duration_ms"], float) for a in attempts)

    # Never a caller key, a merchant token, a signature, request parameters or key material.
    for secret in (API_KEY, MERCHANT_TOKEN, "Bearer", "sign=", "biz_content", "app_auth_token", "PRIVATE KEY"):
        assert secret not in err
    key_body = "".join(demo_credentials.app_private_key_pem.splitlines()[1:-1])
    assert all(key_body[i : i + 16] not in err for i in range(0, len(key_body) - 16, 16))


async def test_every_line_of_a_request_carries_its_id(
    graph_url: str, sandbox: SandboxGateway, restore_logging: object, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure("text", "INFO")
    async with httpx.AsyncClient(base_url=graph_url, timeout=20) as http:
        await http.post(
            "/graphql", json={"query": STATUS, "variables": {"v": "0.0.2"}}, headers={"X-Request-Id": "text-1"}
        )
    err = await read_until(capsys, "INFO graph.http: request")
    [attempt] = [line for line in err.splitlines() if "gateway attempt" in line]
    assert "request_id=text-1" in attempt
    [request] = [line for line in err.splitlines() if "INFO graph.http: request" in line]
    assert "operation=Status" in request
    assert "gateway_calls=1" in request
    assert "cache_hits=0" in request
