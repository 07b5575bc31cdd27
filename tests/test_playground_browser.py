"""The playground in a real headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core from
tests/browser/playground.mjs): it loads everything from the service, runs the example operation against the
sandbox gateway, sends the API key typed into the page, and leaves a screenshot in test-artifacts/.

Needs chromium, node, ``npm ci`` in tests/browser and ``python -m graph build-ide``; without them these tests
skip, unless CI_REQUIRE_BROWSER=1 (set by .ci/run), where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from graph.app import create_app
from graph.config import Settings
from graph.gateway.client import Credentials
from graph.ide.page import BUILD_COMMAND, asset_names, assets_built, example_operation
from graph.sandbox import SandboxGateway
from tests.live_client import VERSIONS, WALLET, change
from tests.servers import serve

ROOT = Path(__file__).resolve().parent.parent
DRIVER = ROOT / "tests" / "browser" / "playground.mjs"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
API_KEY = "playground-test-key"


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if shutil.which("node") is None:
        return "node is missing"
    if not (DRIVER.parent / "node_modules" / "playwright-core").is_dir():
        return "playwright-core is missing (cd tests/browser && npm ci)"
    if not assets_built():
        return f"GraphiQL assets are not built ({BUILD_COMMAND})"
    return None


@pytest.fixture(scope="module")
def browser_ready() -> None:
    reason = _missing()
    if reason is not None:
        if os.environ.get("CI_REQUIRE_BROWSER") == "1":
            pytest.fail(f"CI_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)


def open_playground(base_url: str, screenshot: Path, api_key: str | None = None) -> dict[str, Any]:
    """Run the browser driver against ``base_url``/graphql; its JSON report (see playground.mjs)."""
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot.unlink(missing_ok=True)
    command = ["node", str(DRIVER), "--url", f"{base_url}/graphql", "--screenshot", str(screenshot)]
    if api_key is not None:
        command += ["--api-key", api_key]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False, cwd=DRIVER.parent)
    # On a failed run the driver still reports what the page did (console errors say why), and the screenshot.
    assert done.returncode == 0, f"browser run failed (see {screenshot}):\n{done.stdout}\n{done.stderr}"
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 20_000  # a rendered page, not a blank frame


def direct_data(base_url: str, **headers: str) -> Any:
    """The example's ``data`` asked over plain HTTP, past the cache (extensions.cacheAge differs by the clock)."""
    headers["Cache-Control"] = "no-cache"
    body = httpx.post(f"{base_url}/graphql", json={"query": example_operation()}, headers=headers).json()
    assert "errors" not in body
    return body["data"]


def test_playground_runs_the_example_offline(browser_ready: None, graph_url: str, sandbox: SandboxGateway) -> None:
    report = open_playground(graph_url, ARTIFACTS / "graphiql.png")
    # Signed, verified gateway calls made by the run button: base info, the list, a detail and a trial build each.
    assert len(sandbox.calls) == 12

    origin = urlsplit(graph_url)
    assert origin.hostname == "127.0.0.1"
    urls = [request["url"] for request in report["requests"]]
    leaving = [url for url in urls if urlsplit(url).netloc != origin.netloc]
    assert leaving == [], "requests left the service"
    assert report["failed"] == []
    assert [r for r in report["requests"] if r["status"] != 200] == []
    assert report["consoleErrors"] == []  # a CSP violation or a script error would show here
    assert report["pageErrors"] == []
    loaded = {urlsplit(url).path for url in urls}
    assert {f"/graphiql/static/{name}" for name in asset_names() if not name.startswith("LICENSE")} <= loaded
    assert report["title"] == "alipay-miniapp-graph · GraphiQL"
    assert "Authorization: Bearer" in report["placeholder"]

    shown = json.loads(report["result"])
    assert "errors" not in shown
    assert shown["data"] == direct_data(graph_url)  # the result pane holds what the service answers for it
    app = shown["data"]["miniApp"]
    assert app["appName"] == "小程序demo"
    assert app["appLogo"].startswith("https://")
    items = app["versions"]
    assert [item["appVersion"] for item in items] == ["1.1.0-beta", "1.0.0", "0.1.0", "0.0.2", "0.0.1"]
    assert [item["status"] for item in items] == ["INIT", "AUDIT_REJECT", "AUDITING", "GRAY", "RELEASE"]
    assert [item["detail"]["grayPercentage"] for item in items] == [None, None, None, 10, 10]
    assert items[0]["experience"]["status"] == "PACKAGED"
    assert items[0]["experience"]["qrCodeUrl"].startswith("https://mobilecodec.alipay.com/show.htm?code=")
    assert_png(ARTIFACTS / "graphiql.png")


def test_playground_sends_the_api_key_typed_into_the_page(
    browser_ready: None, start_app: Callable[..., str], sandbox: SandboxGateway
) -> None:
    url = start_app(allow_anonymous=False, api_keys=frozenset({API_KEY}))
    report = open_playground(url, ARTIFACTS / "graphiql-api-key.png", api_key=API_KEY)

    shown = json.loads(report["result"])
    assert "errors" not in shown
    assert shown["data"] == direct_data(url, Authorization=f"Bearer {API_KEY}")
    operations = [r for r in report["requests"] if r["method"] == "POST"]
    # Before the key was typed the schema request was refused; every request after it carried the key.
    assert operations[0] == {**operations[0], "authorization": None, "status": 401}
    keyed = [r for r in operations if r["authorization"] is not None]
    assert keyed
    assert all(r["authorization"] == f"Bearer {API_KEY}" and r["status"] == 200 for r in keyed)
    assert operations[-1] in keyed  # the run button's request
    assert report["failed"] == []
    assert_png(ARTIFACTS / "graphiql-api-key.png")


SUBSCRIBE = (
    'subscription { miniAppVersionChanged(appVersion: "0.0.1", bundleIds: ["com.alipay.alipaywallet"]) '
    "{ ... on MiniAppVersion { bundleId status versionDesc } } }"
)


def test_playground_runs_a_subscription_and_shows_the_update(
    browser_ready: None, credentials: Credentials, live_gateway_url: str, live_sandbox: SandboxGateway
) -> None:
    settings = Settings(credentials=credentials, gateway_url=live_gateway_url, allow_anonymous=True, live_poll_s=0.5)
    screenshot = ARTIFACTS / "graphiql-subscription.png"
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot.unlink(missing_ok=True)
    with serve(create_app(settings), lifespan="on") as url:
        command = [
            "node",
            str(DRIVER.parent / "subscription.mjs"),
            *("--url", f"{url}/graphql", "--screenshot", str(screenshot)),
            *("--query", SUBSCRIBE, "--expect", "withdrawn by the browser test", "--timeout-ms", "60000"),
        ]
        driver = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=DRIVER.parent)
        try:
            assert driver.stdout is not None
            first = driver.stdout.readline()
            if first == "SUBSCRIBED\n":  # the first state is on the page: now the version changes
                change(VERSIONS, ("0.0.1", WALLET), status="OFFLINE", version_desc="withdrawn by the browser test")
            rest, _ = driver.communicate(timeout=120)
        finally:
            if driver.poll() is None:
                driver.kill()
    report = json.loads((first + rest).strip().splitlines()[-1])
    assert driver.returncode == 0, f"browser run failed (see {screenshot}): {report}"
    assert report["sockets"] == [f"{url.replace('http', 'ws', 1)}/graphql"]
    assert report["frames"]
    assert set(report["frames"]) == {"text"}
    assert report["consoleErrors"] == []
    assert report["pageErrors"] == []
    assert json.loads(report["first"])["data"]["miniAppVersionChanged"]["status"] == "RELEASE"
    updated = json.loads(report["updated"])["data"]["miniAppVersionChanged"]
    assert updated == {"bundleId": WALLET, "status": "OFFLINE", "versionDesc": "withdrawn by the browser test"}
    assert_png(screenshot)
