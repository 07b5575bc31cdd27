"""The gateway-call budget: an operation that would make too many gateway calls is refused whole.

The count depends on variables (``bundleIds``, ``representations``), so it cannot be a validation rule;
it runs after validation and before execution, from the parsed document. It counts distinct
(appVersion, bundleId) keys, as the DataLoader will deduplicate them, across aliases, fragments,
``miniAppVersions`` lists and ``_entities`` representations.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    value_from_ast_untyped,
)
from graphql.execution import ExecutionResult
from strawberry.extensions import SchemaExtension

from graph.errors import QueryTooComplex
from resolvers.arguments import DEFAULT_BUNDLE_ID, KNOWN_BUNDLE_IDS


class UpstreamBudget(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        limit = ctx.context.settings.max_upstream_calls
        if ctx.graphql_document is not None:
            keys = gateway_call_keys(ctx.graphql_document, ctx.operation_name, ctx.variables or {})
            # The operations of one batched request share one context, so they share one budget too.
            admitted = ctx.context.planned_calls | keys
            calls = len(admitted)
            if calls <= limit:
                ctx.context.planned_calls = admitted
            else:
                error = QueryTooComplex(
                    f"this operation would make {calls} gateway calls; at most {limit} are allowed "
                    "(GRAPH_MAX_UPSTREAM_CALLS)",
                    setting="GRAPH_MAX_UPSTREAM_CALLS",
                    limit=limit,
                    calls=calls,
                )
                ctx.result = ExecutionResult(
                    data=None, errors=[GraphQLError(error.message, extensions=error.extensions)]
                )
        yield


def count_gateway_calls(document: DocumentNode, operation_name: str | None, variables: Mapping[str, Any]) -> int:
    return len(gateway_call_keys(document, operation_name, variables))


def gateway_call_keys(document: DocumentNode, operation_name: str | None, variables: Mapping[str, Any]) -> set[object]:
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [op for op in operations if operation_name is None or (op.name and op.name.value == operation_name)]
    keys: set[object] = set()
    if not chosen:
        return keys  # graphql-core reports the unknown operation itself
    for field in _root_fields(chosen[0].selection_set, fragments, set()):
        keys.update(_field_keys(field, variables))
    return keys


def _root_fields(
    selection_set: SelectionSetNode, fragments: Mapping[str, FragmentDefinitionNode], seen: set[str]
) -> Iterator[FieldNode]:
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _root_fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
            # Once per operation: spreading a fragment again adds no key (keys are a set), and walking it once
            # per path would take 2**n steps for n fragments that each spread the next one twice.
            seen.add(selection.name.value)
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                yield from _root_fields(fragment.selection_set, fragments, seen)


def _field_keys(field: FieldNode, variables: Mapping[str, Any]) -> list[object]:
    args = {arg.name.value: value_from_ast_untyped(arg.value, dict(variables)) for arg in field.arguments or ()}
    name = field.name.value
    if name == "miniAppVersion":
        return [_key(args.get("appVersion"), args.get("bundleId", DEFAULT_BUNDLE_ID))]
    if name == "miniAppVersions":
        clients = args.get("bundleIds")
        clients = KNOWN_BUNDLE_IDS if clients is None else clients if isinstance(clients, list) else [clients]
        return [_key(args.get("appVersion"), client) for client in clients]
    if name == "_entities":
        reps = args.get("representations")
        reps = reps if isinstance(reps, list) else [reps]
        return [_key(r.get("appVersion"), r.get("bundleId")) if isinstance(r, dict) else object() for r in reps]
    return []


def _key(app_version: Any, bundle_id: Any) -> object:
    # Values that are not plain strings fail argument checks later; count each as its own call meanwhile.
    if isinstance(app_version, str) and isinstance(bundle_id, str):
        return (app_version, bundle_id)
    return object()
