"""The command line as users run it: real processes, stdout for results, stderr for everything else."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import httpx
import pytest

from graph.cli import main
from graph.sandbox import DemoCredentials

ROOT = Path(__file__).resolve().parent.parent
STATUS = "query($v: String!) { miniAppVersion(appVersion: $v) { appVersion status } }"


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ALIPAY_", "GRAPH_"))}
    return subprocess.run(
        [sys.executable, "-m", "graph", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )


def test_committed_schema_equals_export() -> None:
    # Regenerate with: python -m graph export-schema --output schema.graphql
    result = run("export-schema")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (ROOT / "schema.graphql").read_text(encoding="utf-8")


def test_export_schema_to_a_file(tmp_path: Path) -> None:
    target = tmp_path / "out.graphql"
    assert main(["export-schema", "--output", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == (ROOT / "schema.graphql").read_text(encoding="utf-8")


def test_query_demo_prints_json_only() -> None:
    result = run("query", STATUS, "--variables", '{"v": "0.0.1"}', "--demo")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["data"]["miniAppVersion"]["appVersion"] == "0.0.1"
    assert "errors" not in out


def test_query_with_errors_exits_1() -> None:
    result = run("query", STATUS, "--variables", '{"v": "9.9.9"}', "--demo")
    assert result.returncode == 1
    out = json.loads(result.stdout)
    assert out["data"] == {"miniAppVersion": None}
    assert out["errors"][0]["extensions"]["code"] == "ALIPAY_BUSINESS_ERROR"


def test_query_against_a_real_gateway_with_configured_keys(
    tmp_path: Path, demo_credentials: DemoCredentials, gateway_url: str
) -> None:
    key_file = tmp_path / "app.pem"
    key_file.write_text(demo_credentials.app_private_key_pem, encoding="utf-8")
    env = {
        "ALIPAY_APP_ID": demo_credentials.app_id,
        "ALIPAY_APP_PRIVATE_KEY_FILE": str(key_file),
        "ALIPAY_PUBLIC_KEY": demo_credentials.alipay_public_key_pem,
        "ALIPAY_GATEWAY_URL": gateway_url,
        "GRAPH_LOG_LEVEL": "DEBUG",
    }
    result = run("query", STATUS, "--variables", '{"v": "0.0.1"}', env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["data"]["miniAppVersion"]["status"]
    assert "PRIVATE KEY" not in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["query", "{ __typename }"], {}, "ALIPAY_APP_ID is required"),
        (["query", "{ __typename }", "--variables", "[1]", "--demo"], {}, "--variables: expected a JSON object"),
        (["query", "{ __typename }", "--variables", "{bad", "--demo"], {}, "--variables: expected a JSON object"),
        (
            ["serve"],
            {"ALIPAY_APP_ID": "2021", "ALIPAY_APP_PRIVATE_KEY": "not a key", "ALIPAY_PUBLIC_KEY": "x"},
            "ALIPAY_APP_PRIVATE_KEY: not a readable RSA private key",
        ),
    ],
)
def test_configuration_errors_are_one_line(args: list[str], env: dict[str, str], message: str) -> None:
    result = run(*args, env=env)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().count("\n") == 0
    assert message in result.stderr
    assert "not a key" not in result.stderr


def test_console_script_is_installed() -> None:
    script = Path(sysconfig.get_path("scripts")) / "alipay-graph"
    assert script.exists(), "pip install -e . installs the alipay-graph console script"
    # PYTHONPATH: this checkout's code, even where the editable install points at another checkout.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [str(script), "export-schema"], capture_output=True, text=True, timeout=60, check=False, env=env
    )
    assert result.returncode == 0
    assert result.stdout == (ROOT / "schema.graphql").read_text(encoding="utf-8")


def test_serve_demo_answers_over_http() -> None:
    import socket
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIPAY_", "GRAPH_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "graph", "serve", "--demo", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.post(
                    f"http://127.0.0.1:{port}/graphql",
                    json={"query": '{ miniAppVersions(appVersion: "0.0.1") { __typename } }'},
                )
                break
            except httpx.ConnectError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "serve --demo did not start"
                time.sleep(0.1)
        assert response.status_code == 200
        assert [item["__typename"] for item in response.json()["data"]["miniAppVersions"]] == ["MiniAppVersion"] * 5
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the signal it caught (so the exit status says SIGTERM).
    assert process.returncode in {0, -signal.SIGTERM}
    assert '"service ready"' in stderr
    assert "Application shutdown complete" in stderr
