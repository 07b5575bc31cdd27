"""Document limits (depth, aliases, tokens) before validation, suggestions, and batching, end to end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query, parse

from graph.execution.complexity import check_shape, measure
from graph.sandbox import SandboxGateway

DEEP_FRAGMENTS = """
query { _entities(representations: []) { ...A } }
fragment A on MiniAppVersion { baseAuditRecord { ...B } }
fragment B on AuditRecord { memos { ...C } }
fragment C on AuditMemo { memo }
"""


@pytest.mark.parametrize(
    ("document", "depth", "aliases"),
    [
        ("{ a }", 1, 0),
        ("{ a { b { c } } d }", 3, 0),
        ("{ x: a { y: b } z: c }", 2, 3),
        (DEEP_FRAGMENTS, 4, 0),
        ("{ ...F ...F } fragment F on Q { x: a { y: b } }", 2, 4),  # a spread counts each time it is used
        ("{ ... on Q { a { ... on A { b } } } }", 2, 0),
        ("{ ...A } fragment A on Q { b { ...A } }", 1, 0),  # a cycle stops (validation refuses it)
        ("{ ...Missing a }", 1, 0),
        ("query A { a } query B { b { c } }", 2, 0),
    ],
)
def test_measure(document: str, depth: int, aliases: int) -> None:
    shape = measure(parse(document), max_depth=50, max_aliases=50)
    assert (shape.depth, shape.aliases) == (depth, aliases)


def test_the_standard_introspection_query_fits_the_default_depth() -> None:
    assert measure(parse(get_introspection_query()), max_depth=100, max_aliases=100).depth == 15
    assert check_shape(parse(get_introspection_query()), max_depth=15, max_aliases=30) is None


def test_a_fragment_bomb_is_measured_in_linear_time() -> None:
    # Each fragment spreads the next twice: 2**60 paths, which a walk per spread would never finish.
    chain = "\n".join(f"fragment F{i} on Q {{ a{i}: a ...F{i + 1} ...F{i + 1} }}" for i in range(60))
    document = parse("{ ...F0 } " + chain + " fragment F60 on Q { end }")
    refusal = check_shape(document, max_depth=15, max_aliases=30)
    assert refusal is not None
    assert refusal.extensions == {"code": "QUERY_TOO_COMPLEX", "setting": "GRAPH_MAX_ALIASES", "limit": 30}


def test_fragments_spreading_fragments_thousands_deep_are_refused() -> None:
    chain = "\n".join(f"fragment F{i} on Q {{ ...F{i + 1} }}" for i in range(3000))
    refusal = check_shape(parse("{ ...F0 } " + chain + " fragment F3000 on Q { a }"), max_depth=15, max_aliases=30)
    assert refusal is not None
    assert refusal.message == "the document nests fragments too deeply"


async def post(url: str, body: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        return await http.post("/graphql", json=body)


def nested(levels: int) -> str:
    return (
        '{ miniAppVersion(appVersion: "0.0.1") { baseAuditRecord { memos { memo } } } }'
        if levels < 0
        else ("{ __schema { types { " + "fields { type { " * levels + "name" + " } }" * levels + " } } }")
    )


@pytest.mark.parametrize(
    ("changes", "query", "setting"),
    [
        ({"max_depth": 4}, nested(2), "GRAPH_MAX_DEPTH"),
        ({"max_depth": 15}, nested(7), "GRAPH_MAX_DEPTH"),
        ({"max_aliases": 3}, "{ " + " ".join(f"a{i}: __typename" for i in range(4)) + " }", "GRAPH_MAX_ALIASES"),
        ({"max_tokens": 50}, "{ " + "__typename " * 60 + "}", "GRAPH_MAX_TOKENS"),
        ({"max_tokens": 50}, "#\n" * 60 + "{ __typename }", "GRAPH_MAX_TOKENS"),
    ],
)
async def test_limits_refuse_before_any_call(
    start_app: Callable[..., str], sandbox: SandboxGateway, changes: dict[str, int], query: str, setting: str
) -> None:
    body = (await post(start_app(**changes), {"query": query})).json()
    assert "data" not in body  # refused before execution: a request error
    [error] = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["setting"] == setting
    assert setting in error["message"]
    assert sandbox.received == 0


async def test_within_limits_it_answers(start_app: Callable[..., str]) -> None:
    url = start_app(max_depth=4, max_aliases=4, max_tokens=60)
    body = (await post(url, {"query": nested(-1)})).json()
    assert "errors" not in body
    aliases = "{ " + " ".join(f"a{i}: __typename" for i in range(4)) + " }"
    assert (await post(url, {"query": aliases})).json()["data"]["a3"] == "Query"


async def test_suggestions_only_with_introspection(start_app: Callable[..., str]) -> None:
    typo = {"query": '{ miniAppVersoin(appVersion: "1") { status } }'}
    on = (await post(start_app(), typo)).json()
    assert "Did you mean 'miniAppVersion'" in on["errors"][0]["message"]
    off = (await post(start_app(introspection=False), typo)).json()
    assert off["errors"][0]["message"] == "Cannot query field 'miniAppVersoin' on type 'Query'."
    assert off["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    # Still validated: the same document as a valid one runs.
    ok = (await post(start_app(introspection=False), {"query": "{ __typename }"})).json()
    assert ok == {"data": {"__typename": "Query"}}


async def test_batches_are_refused_unless_configured(start_app: Callable[..., str], sandbox: SandboxGateway) -> None:
    batch = [{"query": '{ miniAppVersion(appVersion: "0.0.1") { status } }'}, {"query": "{ __typename }"}]
    refused = await post(start_app(), batch)
    assert refused.status_code == 400
    assert "GRAPH_ALLOW_BATCHING" in refused.json()["errors"][0]["message"]
    assert sandbox.received == 0

    url = start_app(allow_batching=True, max_batch_operations=2)
    answered = await post(url, batch)
    assert answered.status_code == 200
    assert [item["data"] for item in answered.json()] == [
        {"miniAppVersion": {"status": "RELEASE"}},
        {"__typename": "Query"},
    ]
    too_many = await post(url, batch * 2)
    assert too_many.status_code == 400
    assert "GRAPH_MAX_BATCH_OPERATIONS" in too_many.json()["errors"][0]["message"]


async def test_a_batch_shares_one_gateway_call_budget(start_app: Callable[..., str], sandbox: SandboxGateway) -> None:
    url = start_app(allow_batching=True, max_upstream_calls=3)
    two = '{{ a: miniAppVersion(appVersion: "{0}") {{ status }} b: miniAppVersion(appVersion: "{1}") {{ status }} }}'
    batch = [{"query": two.format("0.0.1", "0.0.2")}, {"query": two.format("0.1.0", "1.0.0")}]
    answers = (await post(url, batch)).json()
    codes = [[e["extensions"]["code"] for e in answer.get("errors", [])] for answer in answers]
    assert sorted(codes) == [[], ["QUERY_TOO_COMPLEX"]]  # four keys between them: one operation is refused
    assert sandbox.received == 2
