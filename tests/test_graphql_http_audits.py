"""The GraphQL over HTTP working group's server audits (npm ``graphql-http``, pinned by tests/graphql_http's lockfile)
against the running service, anonymous and with an API key.

Every MUST and every SHOULD audit must pass; the MAY audits (graphql-http's 'notice') are reported, not required.
The harness itself is checked against a server that conforms to nothing, and one that never answers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypedDict

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.conftest import API_KEY
from tests.node import GRAPHQL_HTTP_DIR, GRAPHQL_HTTP_PACKAGES, missing_node, require_node, run_node
from tests.servers import serve

FAILING = ("error", "warn")  # graphql-http's failed MUST and failed SHOULD; a failed MAY is a 'notice'
_AUDIT_TIMEOUT_S = 60.0


class Audit(TypedDict):
    id: str
    name: str
    status: str
    reason: str | None
    response: dict[str, Any] | None


@pytest.fixture(scope="module")
def node() -> None:
    require_node(reason=missing_node(GRAPHQL_HTTP_DIR, packages=GRAPHQL_HTTP_PACKAGES))


def audit(url: str, authorization: str | None = None, timeout_ms: int | None = None) -> list[Audit]:
    environ = {}
    if authorization is not None:
        environ["AUDIT_AUTHORIZATION"] = authorization
    if timeout_ms is not None:
        environ["AUDIT_TIMEOUT_MS"] = str(timeout_ms)
    done = run_node(GRAPHQL_HTTP_DIR, "audit.mjs", url, timeout=_AUDIT_TIMEOUT_S, environ=environ)
    assert done.returncode == 0, done.stderr
    results: list[Audit] = json.loads(done.stdout)
    return results


def failures(results: list[Audit], statuses: tuple[str, ...] = FAILING) -> list[Audit]:
    return [result for result in results if result["status"] in statuses]


def report(results: list[Audit]) -> str:
    """One line per audit: id, name, status, reason, and what the server answered."""
    lines = []
    for result in results:
        answer = result["response"]
        got = "" if not answer else f" -- got {answer['status']} {answer['contentType']}: {answer['body']!r}"
        lines.append(f"{result['id']} {result['name']}: {result['status']}: {result['reason']}{got}")
    return "\n".join(lines)


def assert_conforms(results: list[Audit]) -> None:
    # graphql-http 1.23.1 has 61 audits (13 MUST, 23 SHOULD, 25 MAY): all of them ran, none passed by absence.
    assert len(results) >= 61, report(results)
    failed = failures(results)
    if failed:  # pytest.fail, not assert: pytest would indent the lines of an assertion's message
        pytest.fail(f"{len(failed)} of graphql-http's MUST/SHOULD audits failed:\n{report(failed)}", pytrace=False)


def test_anonymous_requests_pass_every_must_and_should_audit(node: None, start_app: Callable[..., str]) -> None:
    url = start_app(allow_anonymous=True, rate_limit_per_min=0)
    assert_conforms(audit(f"{url}/graphql"))


def test_requests_with_an_api_key_pass_every_must_and_should_audit(node: None, start_app: Callable[..., str]) -> None:
    url = start_app(allow_anonymous=False, api_keys=frozenset({API_KEY}), rate_limit_per_min=0)
    assert_conforms(audit(f"{url}/graphql", authorization=f"Bearer {API_KEY}"))


# --- the harness can fail ------------------------------------------------------------------------------------------


async def _plain_text(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def test_a_server_answering_plain_text_fails_must_audits(node: None) -> None:
    app = Starlette(routes=[Route("/graphql", _plain_text, methods=["GET", "POST"])])
    with serve(app) as url:
        results = audit(f"{url}/graphql")
    errors = {result["id"]: result for result in failures(results, ("error",))}
    # MUST accept application/json and match the content-type; MUST allow string {query} (the body is no JSON).
    assert errors["4655"]["reason"] == "Response header content-type does not contain application/json"
    assert errors["13EE"]["reason"] == "Response body is not valid JSON"
    assert errors["4655"]["response"] == {"status": 200, "contentType": "text/plain; charset=utf-8", "body": "ok"}
    with pytest.raises(
        pytest.fail.Exception, match=r"(?m)^4655 MUST accept application/json and match the content-type: "
    ):
        assert_conforms(results)


async def _never_answers(scope: Scope, receive: Receive, send: Send) -> None:
    while (await receive())["type"] != "http.disconnect":  # the body, then nothing until the client gives up
        pass


def test_a_server_that_never_answers_fails_every_audit_in_bounded_time(node: None) -> None:
    with serve(_never_answers) as url:
        started = time.monotonic()
        results = audit(f"{url}/graphql", timeout_ms=300)
        elapsed = time.monotonic() - started
    assert {result["status"] for result in results} == {"error"}
    assert {result["reason"] for result in results} == {"audit could not run: no answer within 300 ms"}
    assert elapsed < 10
