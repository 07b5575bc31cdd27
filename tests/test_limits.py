"""The gateway-call budget counted from the document and variables, before any call."""

from __future__ import annotations

from pathlib import Path
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


ENTITY_EXPERIENCE = (
    "query($r: [_Any!]!) { _entities(representations: $r) { ... on MiniAppVersion { experience { a } } } }"
)
DASHBOARD = (Path(__file__).resolve().parent.parent / "graph" / "ide" / "example.graphql").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("document", "variables", "calls"),
    [
        ("{ miniApp { __typename } }", {}, 0),
        ("{ miniApp { appName appLogo categories { first } } }", {}, 1),  # base info, once
        ("{ miniApp { versions { appVersion status } } }", {}, 1),  # the list alone
        ("{ miniApp { appName versions { appVersion } } }", {}, 2),
        ("{ miniApp { versions(first: 5) { detail { status } } } }", {}, 6),
        ("{ miniApp { versions { detail { status } } } }", {}, 21),  # no first: the 20 Alipay lists at most
        ("{ miniApp { versions(first: 50) { experience { status } } } }", {}, 21),
        ("{ miniApp { versions(first: 3) { experience { status } detail { experience { status } } } } }", {}, 7),
        ("query($n: Int) { miniApp { versions(first: $n) { detail { status } } } }", {"n": 2}, 3),
        ("query($n: Int = 4) { miniApp { versions(first: $n) { detail { status } } } }", {}, 5),
        ("query($n: Int = 4) { miniApp { versions(first: $n) { detail { status } } } }", {"n": 1}, 2),
        (  # aliases asking the same list share it, and its items by position
            """{ miniApp { a: versions(statuses: [GRAY, RELEASE], first: 2) { detail { status } }
                           b: versions(statuses: [RELEASE, GRAY], first: 3) { detail { status } } } }""",
            {},
            4,
        ),
        (
            """{ miniApp { a: versions(first: 2) { detail { status } }
                           b: versions(bundleId: "com.amap.app", first: 2) { detail { status } } } }""",
            {},
            6,
        ),
        ('{ miniAppVersion(appVersion: "0.0.1") { experience { status } } }', {}, 2),
        ('{ miniAppVersions(appVersion: "0.0.1") { ... on MiniAppVersion { experience { status } } } }', {}, 10),
        (
            ENTITY_EXPERIENCE,
            {"r": [{"appVersion": "1", "bundleId": "com.a.b"}]},
            2,
        ),
        (
            """query { miniApp { ...V } }
               fragment V on MiniApp { versions(first: 2) { ...S ...S } appName }
               fragment S on MiniAppVersionSummary { detail { ...D } }
               fragment D on MiniAppVersion { experience { status } }""",
            {},
            6,
        ),
        ("{ miniApp { versions(bundleId: 5, statuses: 7, first: -1) { detail { status } } } }", {}, 21),
        (DASHBOARD, {}, 22),  # the README's example dashboard: base info, list, 10 details, 10 experiences
    ],
)
def test_counts_the_mini_app_calls(document: str, variables: dict[str, Any], calls: int) -> None:
    assert count_gateway_calls(parse(document), None, variables) == calls


def test_fragments_spread_many_times_are_walked_once() -> None:
    # 40 fragments, each spreading the next twice: 2**40 paths, walked in linear time.
    chain = "\n".join(f"fragment F{i} on MiniAppVersionSummary {{ ...F{i + 1} ...F{i + 1} }}" for i in range(40))
    document = "{ miniApp { versions(first: 3) { ...F0 } } }\n" + chain
    document += "\nfragment F40 on MiniAppVersionSummary { detail { status } }"
    assert count_gateway_calls(parse(document), None, {}) == 4
