"""The gateway-call budget: an operation that would make too many gateway calls is refused whole.

The count depends on variables (``bundleIds``, ``representations``, ``first``), so it cannot be a validation
rule; it runs after validation and before execution, from the parsed document. It counts distinct calls, as the
DataLoaders will deduplicate them, across aliases, fragments, ``miniAppVersions`` lists and ``_entities``
representations: a detail per (appVersion, bundleId), an experience per version whose ``experience`` is
selected, one base info for any of ``miniApp``'s own fields, one list per ``versions`` (client, statuses), and
per listed item (up to ``first``, 20 without it) a detail and an experience when selected.
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

MAX_LISTED = 20  # alipay.open.mini.version.list.query answers with at most the 20 newest versions


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
    operation = chosen[0]
    # A variable the request leaves out takes its default from the document, as execution will.
    defaults = {
        d.variable.name.value: value_from_ast_untyped(d.default_value)
        for d in operation.variable_definitions or ()
        if d.default_value is not None and d.variable.name.value not in variables
    }
    walk = _Walk(fragments, {**defaults, **variables})
    for field in walk.fields(operation.selection_set):
        walk.root_keys(field, keys)
    return keys


class _Walk:
    """The fields each selection set selects, fragments flattened: each fragment once (memoised), whatever the
    number of places it is spread in, so nested spreads cost no more than the document's size."""

    def __init__(self, fragments: Mapping[str, FragmentDefinitionNode], variables: Mapping[str, Any]) -> None:
        self.fragments = fragments
        self.variables = dict(variables)
        self._flat: dict[str, list[FieldNode]] = {}
        self._open: set[str] = set()

    def fields(self, selection_set: SelectionSetNode | None) -> list[FieldNode]:
        found: dict[int, FieldNode] = {}
        for selection in selection_set.selections if selection_set is not None else ():
            if isinstance(selection, FieldNode):
                found[id(selection)] = selection
            elif isinstance(selection, InlineFragmentNode):
                found.update((id(f), f) for f in self.fields(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                found.update((id(f), f) for f in self._fragment(selection.name.value))
        return list(found.values())

    def _fragment(self, name: str) -> list[FieldNode]:
        if name in self._flat:
            return self._flat[name]
        fragment = self.fragments.get(name)
        if fragment is None or name in self._open:  # unknown, or a cycle (validation reports both)
            return []
        self._open.add(name)
        self._flat[name] = flat = self.fields(fragment.selection_set)
        self._open.discard(name)
        return flat

    def selects(self, field: FieldNode, name: str) -> bool:
        return any(sub.name.value == name for sub in self.fields(field.selection_set))

    def args(self, field: FieldNode) -> dict[str, Any]:
        return {arg.name.value: value_from_ast_untyped(arg.value, self.variables) for arg in field.arguments or ()}

    def root_keys(self, field: FieldNode, keys: set[object]) -> None:
        args, name = self.args(field), field.name.value
        if name == "miniAppVersion":
            versions = [_key(args.get("appVersion"), args.get("bundleId", DEFAULT_BUNDLE_ID))]
        elif name in ("miniAppVersions", "miniAppVersionChanged"):
            clients = args.get("bundleIds")
            clients = KNOWN_BUNDLE_IDS if clients is None else clients if isinstance(clients, list) else [clients]
            versions = [_key(args.get("appVersion"), client) for client in clients]
        elif name == "_entities":
            reps = args.get("representations")
            reps = reps if isinstance(reps, list) else [reps]
            versions = [_key(r.get("appVersion"), r.get("bundleId")) if isinstance(r, dict) else object() for r in reps]
        elif name == "miniApp":
            self._app_keys(field, keys)
            return
        else:
            return
        keys.update(versions)
        if self.selects(field, "experience"):  # one experience.query per version, beside its detail
            keys.update(("experience", version) for version in versions)

    def _app_keys(self, field: FieldNode, keys: set[object]) -> None:
        for sub in self.fields(field.selection_set):
            if sub.name.value == "versions":
                self._list_keys(sub, keys)
            elif sub.name.value != "__typename":
                keys.add(("base info",))  # every other field of MiniApp is base info: one call however many

    def _list_keys(self, field: FieldNode, keys: set[object]) -> None:
        """One version.list.query per (client, statuses); per listed item, a detail and an experience call when
        selected. What the list will hold is unknown before it is fetched, so items count by position, up to
        ``first`` (at most the 20 Alipay lists; 20 without ``first``): a sound bound, never an undercount."""
        args = self.args(field)
        statuses = args.get("statuses")
        if isinstance(statuses, list) and all(isinstance(status, str) for status in statuses):
            statuses = tuple(sorted(set(statuses)))
        elif statuses is not None:
            statuses = object()
        listing = ("list", args.get("bundleId", DEFAULT_BUNDLE_ID), statuses)
        if not isinstance(listing[1], str):
            listing = ("list", object(), statuses)
        keys.add(listing)
        first = args.get("first")
        items = min(first, MAX_LISTED) if isinstance(first, int) and first >= 0 else MAX_LISTED
        subs = self.fields(field.selection_set)
        detail = [sub for sub in subs if sub.name.value == "detail"]
        experience = any(sub.name.value == "experience" for sub in subs) or any(
            self.selects(sub, "experience") for sub in detail
        )
        for item in range(items):
            if detail:
                keys.add(("detail", listing, item))
            if experience:
                keys.add(("experience", listing, item))


def _key(app_version: Any, bundle_id: Any) -> object:
    # Values that are not plain strings fail argument checks later; count each as its own call meanwhile.
    if isinstance(app_version, str) and isinstance(bundle_id, str):
        return (app_version, bundle_id)
    return object()
