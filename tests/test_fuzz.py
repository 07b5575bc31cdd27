"""Schemathesis fuzzes /graphql in GraphQL mode (every root field, ``_entities`` through an ``_Any`` strategy):
no 5xx, no answer outside the schema. Bounded: a fixed number of examples per field, on loopback."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import graphql
import pytest
import schemathesis
from hypothesis import HealthCheck, settings, strategies as st
from schemathesis.graphql import nodes
from schemathesis.graphql.checks import GraphQLClientError, GraphQLServerError
from schemathesis.specs.graphql.validation import validate_graphql_response

from graph.sandbox import KNOWN_BUNDLE_IDS, SEED_VERSIONS, SandboxGateway

EXAMPLES = 100  # per root field; each example is one HTTP request
SEEN: Counter[str] = Counter()


def _field(name: str, value: graphql.ValueNode) -> graphql.ObjectFieldNode:
    return graphql.ObjectFieldNode(name=graphql.NameNode(value=name), value=value)


_text = st.text(max_size=70)
_versions = st.sampled_from(sorted({v for v, _ in SEED_VERSIONS})) | _text
_bundles = st.sampled_from(KNOWN_BUNDLE_IDS) | _text
_any_value = _text.map(nodes.String) | st.integers(-(2**31), 2**31 - 1).map(nodes.Int) | st.just(nodes.Null)


@st.composite
def entity_representations(draw: st.DrawFn) -> graphql.ObjectValueNode:
    """An Apollo ``_Any`` representation: mostly well-formed MiniAppVersion keys, some of them broken."""
    fields = [
        _field("__typename", nodes.String(draw(st.sampled_from(["MiniAppVersion", "MiniAppVersion", "Nope"])))),
        _field("appVersion", draw(_versions.map(nodes.String) | _any_value)),
        _field("bundleId", draw(_bundles.map(nodes.String) | _any_value)),
    ]
    return nodes.Object(draw(st.lists(st.sampled_from(fields), unique_by=lambda f: f.name.value, max_size=3)))


schemathesis.graphql.scalar("_Any", entity_representations())
# Strings (appVersion, bundleId, bundleIds' items): random text, but also the seeded versions and known clients,
# so that part of the cases get past the argument checks to the gateway and back.
schemathesis.graphql.scalar("String", (_versions | _bundles).map(nodes.String))
# Schemathesis leaves the federation fields (_entities, _service) out unless a filter names them.
schema = schemathesis.pytest.from_fixture("graphql_schema").include(name_regex=".*")


@pytest.fixture
def graphql_schema(shared_graph_url: str) -> schemathesis.BaseSchema:
    return schemathesis.graphql.from_url(f"{shared_graph_url}/graphql")


# Every code a caller may meet (docs/api.md "Errors", and graphql-core's own about the document); never INTERNAL_ERROR.
EXPECTED_CODES = {
    "BAD_USER_INPUT",
    "QUERY_TOO_COMPLEX",
    "ALIPAY_BUSINESS_ERROR",
    "ALIPAY_UNAVAILABLE",
    "ALIPAY_BAD_SIGNATURE",
    "GRAPHQL_VALIDATION_FAILED",
    "GRAPHQL_PARSE_FAILED",
}


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    print(f"\nfuzz cases: {dict(SEEN)}")  # noqa: T201  (the tally the issue's note quotes; shown with -s)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_graphql_fuzz(case: schemathesis.Case[Any], sandbox: SandboxGateway) -> None:
    # Schemathesis's own GraphQL check counts every error as a failure; here refusals of bad input are the
    # service working. What must never happen: a 5xx, a body that is not a GraphQL response, a null where the
    # schema promises a value (GraphQLSchemaViolation), an error without a code, or a masked internal error.
    response = case.call()
    assert response.status_code < 500, response.text
    payload = response.json()
    with contextlib.suppress(GraphQLClientError, GraphQLServerError):
        validate_graphql_response(case, payload)
    errors = payload.get("errors") or []
    codes = {error.get("extensions", {}).get("code") for error in errors}
    assert codes <= EXPECTED_CODES, errors
    SEEN[f"{case.operation.label}: {'errors ' + ','.join(sorted(codes)) if codes else 'data'}"] += 1
