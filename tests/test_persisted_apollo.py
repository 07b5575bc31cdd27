"""Persisted queries with Apollo's own packages (tests/apq, pinned by its lockfile) against the running service.

Apollo Client 4 with ``createPersistedQueryLink`` and an ``HttpLink`` over Node's fetch (tests/apq/client.mjs logs
every exchange), and ``@apollo/generate-persisted-query-manifest`` as the reference for ``persisted-manifest``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from graph.execution.manifest import build_manifest, parse_manifest
from graph.sandbox import SandboxGateway
from tests.node import APQ_DIR, APQ_PACKAGES, missing_node, require_node, run_node

OPERATIONS = APQ_DIR / "operations"
APP_STATUS = {"file": "operations/app-status.graphql", "variables": {"version": "0.0.1"}}
ALL_CLIENTS = {"file": "operations/all-clients.graphql", "variables": {"version": "0.0.1"}}
UNLISTED = {"document": 'query Unlisted { miniAppVersion(appVersion: "0.0.1") { appName } }'}
NOT_FOUND = {"errors": [{"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}]}


@pytest.fixture(scope="module")
def node() -> None:
    require_node(reason=missing_node(APQ_DIR, packages=APQ_PACKAGES))


def apollo(url: str, link: str, calls: list[dict[str, Any]], **plan: Any) -> dict[str, Any]:
    done = run_node(APQ_DIR, "client.mjs", json.dumps({"url": f"{url}/graphql", "link": link, "calls": calls, **plan}))
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def sent_hash(exchange: dict[str, Any]) -> str:
    if exchange["method"] == "GET":
        from urllib.parse import parse_qs, urlsplit

        extensions = json.loads(parse_qs(urlsplit(exchange["url"]).query)["extensions"][0])
    else:
        extensions = exchange["body"]["extensions"]
    digest: str = extensions["persistedQuery"]["sha256Hash"]
    return digest


def sent_query(exchange: dict[str, Any]) -> str | None:
    if exchange["method"] == "GET":
        return None if "query=" not in exchange["url"] else "?"
    query: str | None = exchange["body"].get("query")
    return query


def manifest_id(name: str) -> str:
    return next(op.id for op in build_manifest(OPERATIONS).operations if op.name == name)


def test_apollo_client_misses_registers_then_hits(node: None, graph_url: str, sandbox: SandboxGateway) -> None:
    out = apollo(graph_url, "sha256", [APP_STATUS, APP_STATUS])
    first, second, third = out["exchanges"]
    assert [e["method"] for e in out["exchanges"]] == ["POST", "POST", "POST"]
    # 1: the hash alone, unknown: PersistedQueryNotFound, on which Apollo's link retries at once...
    assert sent_query(first) is None
    assert (first["status"], json.loads(first["text"])) == (200, NOT_FOUND)
    # 2: ...with the full text and the same hash, which registers it...
    query = sent_query(second)
    assert query is not None
    assert hashlib.sha256(query.encode()).hexdigest() == sent_hash(second) == sent_hash(first)
    assert second["status"] == 200
    assert "x-response-cache" not in second["headers"]
    # 3: the next call sends the hash alone again, and the response cache answers it.
    assert sent_query(third) is None
    assert sent_hash(third) == sent_hash(first)
    assert third["headers"]["x-response-cache"] == "hit"
    assert len(sandbox.calls) == 1
    assert out["results"][0] == out["results"][1]
    assert out["results"][0]["data"]["miniAppVersion"]["appName"] == "小程序demo"
    # Apollo Client hashes exactly what `persisted-manifest` writes for the same file.
    assert sent_hash(first) == manifest_id("AppStatus")


def test_apollo_client_over_get_with_http_revalidation(node: None, graph_url: str, sandbox: SandboxGateway) -> None:
    out = apollo(graph_url, "sha256", [ALL_CLIENTS, ALL_CLIENTS], get=True, revalidate=True)
    first, second, third = out["exchanges"]
    assert [e["method"] for e in out["exchanges"]] == ["GET", "POST", "GET"]  # the text itself goes by POST
    assert json.loads(first["text"]) == NOT_FOUND
    assert first["headers"]["cache-control"] == "private, no-cache, must-revalidate"
    assert sent_query(second) is not None
    assert sent_query(third) is None
    assert sent_hash(first) == sent_hash(second) == sent_hash(third) == manifest_id("AllClients")
    assert third["headers"]["x-response-cache"] == "hit"
    assert third["headers"]["cache-control"].startswith("private, max-age=")
    assert 0 < int(third["headers"]["cache-control"].rsplit("=", 1)[1]) <= 60
    assert third["headers"]["etag"].startswith('W/"')
    revalidation = out["revalidation"]
    assert revalidation["url"] == third["url"]
    assert (revalidation["status"], revalidation["text"]) == (304, "")
    assert revalidation["headers"]["etag"] == third["headers"]["etag"]
    assert len(out["results"][1]["data"]["miniAppVersions"]) == 5
    # Five clients, one gateway call each, once: the GET hit and the revalidation asked nothing new. fetch() sends
    # Cache-Control: no-cache with If-None-Match (the Fetch standard), but the answers are younger than
    # GRAPH_CACHE_MIN_REFRESH_S: they serve (the refresh used to cost five more calls).
    assert len(sandbox.calls) == 5


def test_safelist_serves_listed_operations_to_apollo_and_refuses_others(
    node: None, start_app: Callable[..., str], sandbox: SandboxGateway, tmp_path: Path
) -> None:
    manifest_file = tmp_path / "persisted-query-manifest.json"
    manifest_file.write_text(build_manifest(OPERATIONS).dumps(), encoding="utf-8")
    url = start_app(persisted_queries="safelist", operations=parse_manifest(manifest_file.read_text()))

    # Apollo's safelist client: ids looked up in the manifest by operation name, never any text sent.
    listed = apollo(url, "manifest", [APP_STATUS, ALL_CLIENTS], manifest=str(manifest_file))
    assert [sent_query(e) for e in listed["exchanges"]] == [None, None]
    assert [sent_hash(e) for e in listed["exchanges"]] == [manifest_id("AppStatus"), manifest_id("AllClients")]
    assert listed["results"][0]["data"]["miniAppVersion"]["status"] == "RELEASE"
    assert len(listed["results"][1]["data"]["miniAppVersions"]) == 5
    assert len(sandbox.calls) == 5  # AllClients found Alipay's answer cached by AppStatus

    # A plain HttpLink sends the text, which Apollo Client prints as the manifest has it: allowed, and cached.
    plain = apollo(url, "none", [ALL_CLIENTS])
    assert plain["results"][0]["data"] == listed["results"][1]["data"]
    assert plain["exchanges"][0]["headers"]["x-response-cache"] == "hit"

    # Anything else is refused before it runs, and Apollo's link does not retry a refusal.
    before = len(sandbox.calls)
    unlisted = apollo(url, "sha256", [UNLISTED])
    assert len(unlisted["exchanges"]) == 1
    # Apollo Client 4 asks for application/graphql-response+json, so it reads a refusal's body as GraphQL errors.
    assert unlisted["exchanges"][0]["status"] == 403
    error = unlisted["results"][0]["error"]
    assert error["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_ALLOWED"
    text_only = apollo(url, "none", [UNLISTED])
    assert text_only["exchanges"][0]["status"] == 403
    assert len(sandbox.calls) == before


@pytest.mark.parametrize("folder", ["operations", "printing"])
def test_persisted_manifest_equals_apollos_generator(node: None, folder: str, tmp_path: Path) -> None:
    config, output = tmp_path / "persisted-query-manifest.config.json", tmp_path / "apollo.json"
    documents = [f"{APQ_DIR / folder}/**/*.graphql", f"{APQ_DIR / folder}/**/*.gql"]
    config.write_text(json.dumps({"documents": documents, "output": str(output)}))
    cli = "node_modules/@apollo/generate-persisted-query-manifest/cli.js"
    done = run_node(APQ_DIR, cli, "--config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    ours = build_manifest(APQ_DIR / folder)
    assert len(ours.operations) >= 2
    assert ours.dumps() == output.read_text(encoding="utf-8")  # byte for byte: ids, bodies, order, layout
