"""The playground page over HTTP: our page when assets are built, Strawberry's CDN page (and one warning)
when not, nothing with GRAPH_GRAPHIQL=false; assets public but confined to their folder.

What the page does in a browser is tests/test_playground_browser.py's job.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from graph.app import create_app
from graph.config import Settings
from graph.ide.page import asset_names, assets_built, example_operation, render_page
from graph.sandbox import SandboxGateway
from tests.servers import serve

HTML = {"Accept": "text/html"}
StartApp = Callable[..., str]


@pytest.fixture
def built_dir(tmp_path: Path) -> Path:
    """A static folder holding a file for every asset name; their content is ours, the serving is the app's."""
    static = tmp_path / "static"
    static.mkdir()
    for name in asset_names():
        (static / name).write_text(f"/* {name} */\n", encoding="utf-8")
    return static


@pytest.fixture
def start(settings: Settings) -> Iterator[StartApp]:
    """Serve the app with its GraphiQL assets taken from ``static_dir`` and ``settings`` changed by keyword."""
    with contextlib.ExitStack() as stack:

        def start_app(static_dir: Path, **changes: Any) -> str:
            app = create_app(replace(settings, **changes), ide_static_dir=static_dir)
            return stack.enter_context(serve(app, lifespan="on"))

        yield start_app


def test_assets_built_needs_every_file(built_dir: Path, tmp_path: Path) -> None:
    assert assets_built(built_dir)
    assert not assets_built(tmp_path / "missing")
    (built_dir / "graphiql.min.js").unlink()
    assert not assets_built(built_dir)


def test_the_example_is_embedded_as_json_and_the_policy_allows_exactly_the_inline_script() -> None:
    page = render_page()
    embedded = re.search(r'<script type="application/json" id="graphiql-example">(.*?)</script>', page.html, re.S)
    assert embedded is not None
    assert json.loads(embedded.group(1)) == example_operation()
    assert "<" not in embedded.group(1)  # escaped: an operation can never close the script element
    inline = re.findall(r"<script>(.*?)</script>", page.html, re.S)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    policy = page.content_security_policy
    assert policy is not None
    assert f"script-src 'self' 'sha256-{digest}'" in policy
    assert "default-src 'none'" in policy
    assert "connect-src 'self'" in policy
    assert "http" not in policy  # no host allowed but the service's own
    assert "{{" not in page.html


async def test_page_and_assets_are_served_from_the_service(start: StartApp, built_dir: Path) -> None:
    url = start(built_dir)
    async with httpx.AsyncClient(base_url=url) as http:
        page = await http.get("/graphql", headers=HTML)
        assert page.status_code == 200
        assert page.headers["content-security-policy"] == render_page().content_security_policy
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert sorted(a for a in assets if not a.startswith("data:")) == sorted(
            f"graphiql/static/{name}" for name in asset_names() if not name.startswith("LICENSE")
        )
        assert "unpkg" not in page.text
        assert "//" not in "".join(assets)  # relative: resolved against /graphql, they stay on this host
        for name in asset_names():
            got = await http.get(f"/graphiql/static/{name}")
            assert got.status_code == 200
            assert got.text == f"/* {name} */\n"


async def test_example_operation_answers_from_the_sandbox(graph_url: str, sandbox: SandboxGateway) -> None:
    async with httpx.AsyncClient(base_url=graph_url) as http:
        body = (await http.post("/graphql", json={"query": example_operation()})).json()
    assert "errors" not in body
    app = body["data"]["miniApp"]
    assert app["appName"]
    assert app["appLogo"]
    items = app["versions"]
    assert len(items) == 5
    assert all(item["status"] and item["detail"]["scanResult"] and item["experience"]["status"] for item in items)
    assert len(sandbox.calls) == 12  # base info, the list, and a detail and a trial build per version


async def test_assets_are_public_but_nothing_else_opens(start: StartApp, built_dir: Path) -> None:
    (built_dir.parent / "secret.txt").write_text("not for you", encoding="utf-8")
    url = start(built_dir, allow_anonymous=False, api_keys=frozenset({"key-one"}))
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/graphql", headers=HTML)).status_code == 200
        assert (await http.get("/graphiql/static/graphiql.min.js")).status_code == 200
        assert (await http.post("/graphql", json={"query": "{ __typename }"})).status_code == 401
        assert (await http.get("/graphql", params={"query": "{ __typename }"}, headers=HTML)).status_code == 401
        for path in (
            "/graphiql/static/%2e%2e/secret.txt",
            "/graphiql/static/..%2fsecret.txt",
            "/graphiql/static/",
            "/graphiql/secret.txt",
            "/graphiql/static/missing.js",
        ):
            got = await http.get(path)
            assert got.status_code == 404, path
            assert "not for you" not in got.text


async def test_without_built_assets_strawberrys_page_and_one_warning(
    start: StartApp, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="graph.app")
    url = start(tmp_path / "never-built")
    async with httpx.AsyncClient(base_url=url) as http:
        for _ in range(2):
            page = await http.get("/graphql", headers=HTML)
            assert page.status_code == 200
            assert "unpkg.com/graphiql" in page.text  # Strawberry's page: it needs the CDN
            assert "content-security-policy" not in page.headers
        assert (await http.get("/graphiql/static/graphiql.min.js")).status_code == 404
    warnings = [r.getMessage() for r in caplog.records if "GraphiQL assets are not built" in r.getMessage()]
    assert len(warnings) == 1
    assert "python -m graph build-ide" in warnings[0]


async def test_graphiql_off_is_404_and_queries_still_work(
    start: StartApp, built_dir: Path, sandbox: SandboxGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="graph.app")
    url = start(built_dir, graphiql=False)
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/graphql", headers=HTML)).status_code == 404
        assert (await http.get("/graphiql/static/graphiql.min.js")).status_code == 404
        got = await http.get("/graphql", params={"query": '{ miniAppVersion(appVersion: "0.0.1") { status } }'})
        assert got.status_code == 200
        assert got.json()["data"]["miniAppVersion"]["status"] == "RELEASE"
        posted = await http.post("/graphql", json={"query": example_operation()})
        assert len(posted.json()["data"]["miniApp"]["versions"]) == 5
    assert not [r for r in caplog.records if "GraphiQL" in r.getMessage()]  # off on purpose: nothing to warn of
