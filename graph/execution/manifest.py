"""Apollo's persisted-query manifest: read one (``GRAPH_OPERATIONS_FILE``), or write one for a folder of operations.

The format is the one ``@apollo/generate-persisted-query-manifest`` writes and Apollo Router reads::

    {"format": "apollo-persisted-query-manifest", "version": 1,
     "operations": [{"id": "<sha256 of body>", "name": "Status", "type": "query", "body": "query Status ..."}]}

``build_manifest`` gives the ids and bodies that tool gives for the same ``.graphql`` files, so Apollo Client's
persisted-query link (which hashes the same text) and this service agree: each file's document, plus the fragments
it uses from other files, with ``__typename`` added as Apollo Client's cache adds it, definitions sorted
(operations first, then fragments by name) and printed by graphql-js 16's printer. Apollo's tool refuses a file
with several operations; here each of them becomes an entry of its own, with the fragments it uses.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "apollo-persisted-query-manifest"
OPERATION_TYPES = ("query", "mutation", "subscription")
SUFFIXES = (".graphql", ".gql")


class ManifestError(ValueError):
    """The manifest, or an operation file, is wrong; the message says where."""


@dataclass(frozen=True, slots=True)
class Operation:
    id: str
    name: str
    type: str
    body: str


@dataclass(frozen=True)
class Manifest:
    operations: tuple[Operation, ...]
    by_id: Mapping[str, Operation] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", {operation.id: operation for operation in self.operations})

    def dumps(self) -> str:
        """As Apollo's tool writes it (``JSON.stringify(manifest, null, 2)``: two-space indent, no final newline)."""
        operations = [{"id": op.id, "name": op.name, "type": op.type, "body": op.body} for op in self.operations]
        return json.dumps({"format": FORMAT, "version": 1, "operations": operations}, indent=2, ensure_ascii=False)


def operation_id(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def parse_manifest(text: str) -> Manifest:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"not JSON (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT or raw.get("version") != 1:
        raise ManifestError(f'expected {{"format": "{FORMAT}", "version": 1, "operations": [...]}}')
    items = raw.get("operations")
    if not isinstance(items, list):
        raise ManifestError("'operations' must be a list")
    operations: list[Operation] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        operation = _operation(item, f"operations[{index}]")
        if operation.id in seen:
            raise ManifestError(f"operations[{index}]: id {operation.id!r} appears twice")
        seen.add(operation.id)
        operations.append(operation)
    return Manifest(tuple(operations))


def _operation(item: Any, where: str) -> Operation:
    if not isinstance(item, dict):
        raise ManifestError(f"{where}: expected an object with id, name, type and body")
    for key in ("id", "name", "type", "body"):
        value = item.get(key)
        if not isinstance(value, str) or (key != "name" and not value.strip()):
            raise ManifestError(f"{where}: {key!r} must be a non-empty string")
    if item["type"] not in OPERATION_TYPES:
        raise ManifestError(f"{where}: 'type' must be query, mutation or subscription")
    return Operation(item["id"], item["name"], item["type"], item["body"])


def build_manifest(directory: Path) -> Manifest:
    """The manifest of every ``*.graphql`` / ``*.gql`` file under ``directory`` (operations sorted by name)."""
    from graphql import DocumentNode, FragmentDefinitionNode, GraphQLSyntaxError, OperationDefinitionNode, parse

    from graph.execution.printer import add_typename, print_document

    if not directory.is_dir():
        raise ManifestError(f"{directory}: not a folder")
    files = sorted(path for path in directory.rglob("*") if path.suffix in SUFFIXES and path.is_file())
    documents: list[tuple[str, DocumentNode]] = []
    fragments: dict[str, FragmentDefinitionNode] = {}
    for path in files:
        where = str(path.relative_to(directory))
        try:
            # graphql-js 16's grammar, which Apollo's tools parse with: no empty selection sets.
            document = parse(path.read_text(encoding="utf-8"), allow_empty_selection_sets=False)
        except (OSError, UnicodeDecodeError) as exc:
            raise ManifestError(f"{where}: cannot read ({type(exc).__name__})") from None
        except GraphQLSyntaxError as exc:
            raise ManifestError(f"{where}: {exc.message} at {_at(exc)}") from None
        for definition in document.definitions:
            if not isinstance(definition, FragmentDefinitionNode | OperationDefinitionNode):
                kind = definition.kind.replace("_", " ")
                raise ManifestError(f"{where}: operation files hold operations and fragments, not a {kind}")
            if isinstance(definition, FragmentDefinitionNode):
                if definition.name.value in fragments:
                    raise ManifestError(f"{where}: fragment {definition.name.value} is defined twice")
                fragments[definition.name.value] = definition
        documents.append((where, document))

    entries: dict[str, Operation] = {}
    for where, document in documents:
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        for operation in operations:
            if operation.name is None:
                raise ManifestError(f"{where}: anonymous operations cannot be persisted; name the operation")
            name = operation.name.value
            if name in entries:
                raise ManifestError(f"{where}: operation {name} is defined twice")
            # One operation in the file: the file's whole document, as Apollo Client sends it; several: each alone.
            own = list(document.definitions) if len(operations) == 1 else [operation]
            wanted = _with_fragments(own, fragments, where)
            body = print_document(add_typename(DocumentNode(definitions=tuple(_sorted(wanted)))))
            entries[name] = Operation(operation_id(body), name, operation.operation.value, body)
    return Manifest(tuple(entries[name] for name in sorted(entries)))


def _with_fragments(definitions: list[Any], fragments: Mapping[str, Any], where: str) -> list[Any]:
    """``definitions`` and, transitively, every fragment they spread that they do not define themselves."""
    from graphql import FragmentDefinitionNode, FragmentSpreadNode, Visitor, visit

    class Spreads(Visitor):
        def __init__(self) -> None:
            super().__init__()
            self.names: list[str] = []

        def enter_fragment_spread(self, node: FragmentSpreadNode, *_: Any) -> None:
            self.names.append(node.name.value)

    result = list(definitions)
    defined = {d.name.value for d in result if isinstance(d, FragmentDefinitionNode)}
    pending = list(result)
    while pending:
        spreads = Spreads()
        visit(pending.pop(), spreads)
        for name in spreads.names:
            if name in defined:
                continue
            if name not in fragments:
                raise ManifestError(f"{where}: fragment {name} is used but defined in no file")
            defined.add(name)
            result.append(fragments[name])
            pending.append(fragments[name])
    return result


def _sorted(definitions: list[Any]) -> list[Any]:
    # Apollo's sortTopLevelDefinitions: by kind (OperationDefinition before FragmentDefinition), then by name.
    from graphql import OperationDefinitionNode

    return sorted(
        definitions,
        key=lambda d: (not isinstance(d, OperationDefinitionNode), d.name.value if d.name is not None else ""),
    )


def _at(exc: Any) -> str:
    locations = exc.locations or []
    return f"line {locations[0].line}, column {locations[0].column}" if locations else "an unknown place"
