"""The gateway-call budget counted from the document and variables, before any call."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import parse

from graph.execution.limits import count_gateway_calls

FRAGMENTS = """
query Q($v: String!) {
  a: miniAppVersion(appVersion: $v) { status }
  ...More
  ... on Query { c: miniAppVersion(appVersion: "0.0.3", bundleId: "com.amap.app") { status } }
}
fragment More on Query {
  b: miniAppVersion(appVersion: "0.0.2") { status }
  ...Again
}
fragment Again on Query { d: miniAppVersion(appVersion: $v) { status } }
"""


@pytest.mark.parametrize(
    ("document", "variables", "calls"),
    [
        ('{ miniAppVersion(appVersion: "0.0.1") { status } }', {}, 1),
        (
            '{ a: miniAppVersion(appVersion: "0.0.1") { status } b: miniAppVersion(appVersion: "0.0.1") { memo } }',
            {},
            1,
        ),
        ('{ miniAppVersions(appVersion: "0.0.1") { __typename } }', {}, 5),
        ('{ miniAppVersions(appVersion: "0.0.1", bundleIds: ["com.a.b", "com.c.d"]) { __typename } }', {}, 2),
        ('{ miniAppVersions(appVersion: "0.0.1", bundleIds: "com.a.b") { __typename } }', {}, 1),
        (
            'query($ids: [String!]) { miniAppVersions(appVersion: "1", bundleIds: $ids) { __typename } }',
            {"ids": None},
            5,
        ),
        (
            'query($ids: [String!]) { miniAppVersions(appVersion: "1", bundleIds: $ids) { __typename } }',
            {"ids": ["com.a.b", "com.a.b", "com.c.d"]},
            2,
        ),
        (FRAGMENTS, {"v": "0.0.1"}, 3),
        (
            "query($r: [_Any!]!) { _entities(representations: $r) { __typename } }",
            {"r": [{"appVersion": "1", "bundleId": "com.a.b"}, {"appVersion": "1", "bundleId": "com.a.b"}, "junk"]},
            2,
        ),
        ("query($r: [_Any!]!) { _entities(representations: $r) { __typename } }", {"r": {"appVersion": 1}}, 1),
        ("{ miniAppVersion(appVersion: 5) { status } }", {}, 1),
        ("{ _service { sdl } }", {}, 0),
        ('query A { _service { sdl } } query B { miniAppVersion(appVersion: "1") { status } }', {}, 0),
    ],
)
def test_counts_distinct_gateway_calls(document: str, variables: dict[str, Any], calls: int) -> None:
    assert count_gateway_calls(parse(document), None, variables) == calls


def test_the_named_operation_is_counted() -> None:
    document = parse('query A { _service { sdl } } query B { miniAppVersions(appVersion: "1") { __typename } }')
    assert count_gateway_calls(document, "B", {}) == 5
    assert count_gateway_calls(document, "A", {}) == 0
    assert count_gateway_calls(document, "Missing", {}) == 0


def test_fragment_cycles_and_unknown_fragments_terminate() -> None:
    document = parse(
        """
        query { ...A ...Unknown }
        fragment A on Query { x: miniAppVersion(appVersion: "1") { status } ...B }
        fragment B on Query { ...A }
        """
    )
    assert count_gateway_calls(document, None, {}) == 1


def test_a_fragment_bomb_is_counted_in_linear_time() -> None:
    # Each fragment spreads the next twice: 2**60 paths to the one field, which a walk per path would never finish.
    chain = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(60))
    document = parse("{ ...F0 } " + chain + ' fragment F60 on Query { miniAppVersion(appVersion: "1") { status } }')
    assert count_gateway_calls(document, None, {}) == 1
