"""Operations printed exactly as graphql-js 16's ``print()`` prints them, with Apollo Client's ``__typename``.

A persisted-query id is the SHA-256 of the text Apollo's tools print, so the manifest command must print the same
bytes. graphql-core 3.3's ``print_ast`` follows graphql-js 17, which wraps long variable lists and values
differently: this module ports graphql-js 16.x's printer for executable documents (operations and fragments,
all that operation files hold). Indentation is two spaces per level; a field's arguments go on their own lines
when ``name(args)`` would be longer than 80 characters.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from graphql import (
    ArgumentNode,
    BooleanValueNode,
    DirectiveNode,
    DocumentNode,
    EnumValueNode,
    FieldNode,
    FloatValueNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    ListTypeNode,
    ListValueNode,
    NamedTypeNode,
    NameNode,
    NonNullTypeNode,
    NullValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    VariableDefinitionNode,
    VariableNode,
    Visitor,
    visit,
)
from graphql.language import Node

MAX_LINE_LENGTH = 80
_SHORT_ESCAPES = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r", 0x22: '\\"', 0x5C: "\\\\"}
_TYPENAME = FieldNode(name=NameNode(value="__typename"), arguments=(), directives=())


class PrintError(ValueError):
    """The document holds something an operation file should not (type definitions, experimental syntax)."""


def print_document(document: DocumentNode) -> str:
    return "\n\n".join(_definition(definition) for definition in document.definitions)


def add_typename(document: DocumentNode) -> DocumentNode:
    """What Apollo Client's cache does to every operation: ``__typename`` at the end of each selection set but
    the operation's own, unless the set already asks for it (or for any ``__`` field), or its field is ``@export``ed."""
    result = visit(document, _AddTypename())
    assert isinstance(result, DocumentNode)  # noqa: S101  (visit returns what it was given)
    return result


class _AddTypename(Visitor):
    def enter_selection_set(self, node: SelectionSetNode, _key: Any, parent: Any, *_: Any) -> Any:
        if isinstance(parent, OperationDefinitionNode):
            return None
        if any(isinstance(s, FieldNode) and s.name.value.startswith("__") for s in node.selections):
            return None
        if isinstance(parent, FieldNode) and any(d.name.value == "export" for d in parent.directives or ()):
            return None
        return SelectionSetNode(selections=(*node.selections, _TYPENAME))


def _js_length(text: str) -> int:
    """JavaScript's ``length``: UTF-16 code units (a character outside the BMP counts twice)."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def _join(items: Iterable[str], separator: str = "") -> str:
    return separator.join(item for item in items if item)


def _wrap(start: str, text: str, end: str = "") -> str:
    return f"{start}{text}{end}" if text else ""


def _indent(text: str) -> str:
    return _wrap("  ", text.replace("\n", "\n  "))


def _block(items: Iterable[str]) -> str:
    return _wrap("{\n", _indent(_join(items, "\n")), "\n}")


def _definition(node: Node) -> str:
    if isinstance(node, OperationDefinitionNode):
        variables = [_variable_definition(v) for v in node.variable_definitions or ()]
        if any("\n" in v for v in variables):
            variable_text = _wrap("(\n", _join(variables, "\n"), "\n)")
        else:
            variable_text = _wrap("(", _join(variables, ", "), ")")
        operation = node.operation.value
        name = _name(node.name) if node.name else ""
        prefix = _join(
            [
                _wrap("", _description(node.description), "\n"),
                _join([operation, name + variable_text, _directives(node.directives)], " "),
            ]
        )
        short_form = operation == "query" and len(prefix) == len(operation)
        return ("" if short_form else prefix + " ") + _selection_set(node.selection_set)
    if isinstance(node, FragmentDefinitionNode):
        if node.variable_definitions:
            raise PrintError(f"fragment {node.name.value}: fragment variables are not GraphQL")
        return _join(
            [
                _wrap("", _description(node.description), "\n"),
                f"fragment {_name(node.name)} on {_name(node.type_condition.name)} ",
                _wrap("", _directives(node.directives), " "),
                _selection_set(node.selection_set),
            ]
        )
    raise PrintError(f"an operation file holds operations and fragments only, not a {node.kind.replace('_', ' ')}")


def _description(node: StringValueNode | None) -> str:
    return _value(node) if node is not None else ""


def _variable_definition(node: VariableDefinitionNode) -> str:
    return _join(
        [
            _wrap("", _description(node.description), "\n"),
            _value(node.variable),
            ": ",
            _type(node.type),
            _wrap(" = ", _value(node.default_value) if node.default_value is not None else ""),
            _wrap(" ", _directives(node.directives)),
        ]
    )


def _selection_set(node: SelectionSetNode | None) -> str:
    return _block(_selection(s) for s in node.selections) if node is not None else ""


def _selection(node: Node) -> str:
    if isinstance(node, FieldNode):
        prefix = _wrap("", _name(node.alias) if node.alias else "", ": ") + _name(node.name)
        arguments = [_argument(a) for a in node.arguments or ()]
        if not arguments:
            line = prefix
        elif _js_length(prefix) + _js_length(", ".join(arguments)) + 2 > MAX_LINE_LENGTH:
            line = prefix + _wrap("(\n", _indent(_join(arguments, "\n")), "\n)")
        else:
            line = prefix + _wrap("(", _join(arguments, ", "), ")")
        return _join([line, _wrap(" ", _directives(node.directives)), _wrap(" ", _selection_set(node.selection_set))])
    if isinstance(node, FragmentSpreadNode):
        return "..." + _name(node.name) + _wrap(" ", _directives(node.directives))
    if isinstance(node, InlineFragmentNode):
        condition = _wrap("on ", _name(node.type_condition.name) if node.type_condition else "")
        return _join(["...", condition, _directives(node.directives), _selection_set(node.selection_set)], " ")
    raise PrintError(f"unexpected selection: {node.kind}")  # pragma: no cover  (the parser makes no other kind)


def _argument(node: ArgumentNode) -> str:
    return f"{_name(node.name)}: {_value(node.value)}"


def _directives(nodes: Sequence[DirectiveNode] | None) -> str:
    return _join((_directive(d) for d in nodes or ()), " ")


def _directive(node: DirectiveNode) -> str:
    return "@" + _name(node.name) + _wrap("(", _join((_argument(a) for a in node.arguments or ()), ", "), ")")


def _name(node: NameNode) -> str:
    return node.value


def _type(node: Node) -> str:
    if isinstance(node, NamedTypeNode):
        return _name(node.name)
    if isinstance(node, ListTypeNode):
        return f"[{_type(node.type)}]"
    if isinstance(node, NonNullTypeNode):
        return f"{_type(node.type)}!"
    raise PrintError(f"unexpected type: {node.kind}")  # pragma: no cover  (the parser makes no other kind)


def _value(node: Node) -> str:
    if isinstance(node, VariableNode):
        return "$" + _name(node.name)
    if isinstance(node, IntValueNode | FloatValueNode | EnumValueNode):
        return node.value
    if isinstance(node, StringValueNode):
        return _block_string(node.value) if node.block else _string(node.value)
    if isinstance(node, BooleanValueNode):
        return "true" if node.value else "false"
    if isinstance(node, NullValueNode):
        return "null"
    if isinstance(node, ListValueNode):
        return "[" + _join((_value(v) for v in node.values), ", ") + "]"
    if isinstance(node, ObjectValueNode):
        return "{" + _join((f"{_name(f.name)}: {_value(f.value)}" for f in node.fields), ", ") + "}"
    raise PrintError(f"unexpected value: {node.kind}")  # pragma: no cover  (the parser makes no other kind)


def _string(value: str) -> str:
    out = []
    for char in value:
        code = ord(char)
        if code in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[code])
        elif code < 0x20 or 0x7F <= code <= 0x9F:
            out.append(f"\\u{code:04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _block_string(value: str) -> str:
    escaped = value.replace('"""', '\\"""')
    lines = escaped.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    single_line = len(lines) == 1
    force_leading_newline = len(lines) > 1 and all(not line or line[0] in " \t" for line in lines[1:])
    trailing_triple_quotes = escaped.endswith('\\"""')
    trailing_quote = value.endswith('"') and not trailing_triple_quotes
    force_trailing_newline = trailing_quote or value.endswith("\\")
    multiple_lines = (
        not single_line
        or _js_length(value) > 70
        or force_trailing_newline
        or force_leading_newline
        or trailing_triple_quotes
    )
    skip_leading_newline = single_line and value[:1] in (" ", "\t")
    result = ""
    if (multiple_lines and not skip_leading_newline) or force_leading_newline:
        result += "\n"
    result += escaped
    if multiple_lines or force_trailing_newline:
        result += "\n"
    return '"""' + result + '"""'
