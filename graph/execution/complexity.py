"""Parsing and validation, cached, with the document limits in front of them (``QUERY_TOO_COMPLEX``).

- tokens (GRAPH_MAX_TOKENS): the parser stops counting at the limit, so a huge document costs no more than a
  small one to refuse;
- depth (GRAPH_MAX_DEPTH) and aliases (GRAPH_MAX_ALIASES), measured through fragments before validation runs:
  graphql-core's validation is itself the expensive part for a document of 1000 aliases.

Parsing and validating a 68-field query costs most of a request's CPU; both are pure functions of the document
text, so each goes through a bounded LRU (Strawberry's ParserCache and ValidationCache would run around the
limits, not behind them). Strawberry's QueryDepthLimiter and MaxAliasesLimiter walk every fragment spread again
(exponential on a chain of fragments that spread the next one twice) and report plain errors without a code;
these walks visit each fragment once. Field suggestions ("Did you mean ...?") tell an outsider the schema: with
introspection off, validation hides them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
    validate,
)
from graphql.validation import ASTValidationRule
from strawberry.extensions import SchemaExtension
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from graph.config import Settings
from graph.data.lru import SizedLRU
from graph.errors import QueryTooComplex

# Parsed and validated documents, by their text: bounded in bytes (an AST and its validation take a few hundred
# times the text's size; a 14 KB document was ~1.3 MB), never by a count of entries.
PREPARED_BYTES = 64 * 1024 * 1024
PREPARED_BYTES_PER_CHARACTER = 100
# graphql-core's wording when its parser stops at a limit: ours, or Python's recursion limit.
_TOKENS_MESSAGE = "Document contains more than"
_NESTING_MESSAGE = "Document is nested too deeply"


@dataclass(slots=True)
class _Prepared:
    """One document text's parse, and (once asked for) its shape check and validation. Keyed by the text, never
    by the AST: graphql-core hashes a node by hashing every node below it, a cost paid on every lookup."""

    document: DocumentNode
    checked: dict[tuple[int, int, int, bool, tuple[type[ASTValidationRule], ...]], list[GraphQLError]] = field(
        default_factory=dict
    )

    def check(
        self, schema: GraphQLSchema, rules: tuple[type[ASTValidationRule], ...], settings: Settings
    ) -> list[GraphQLError]:
        """The shape limits (depth, aliases), then validation: the errors, [] for a valid document."""
        hide = not settings.introspection
        key = (id(schema), settings.max_depth, settings.max_aliases, hide, rules)
        errors = self.checked.get(key)
        if errors is None:
            problem = check_shape(self.document, max_depth=settings.max_depth, max_aliases=settings.max_aliases)
            if problem is not None:
                # Instead of validation: the refusal is all the caller gets, and validation never runs.
                errors = [GraphQLError(problem.message, extensions=problem.extensions)]
            else:
                errors = _validate(schema, self.document, rules, hide)
            self.checked[key] = errors
        return errors


_prepared: SizedLRU[tuple[str, int], _Prepared] = SizedLRU(PREPARED_BYTES)


def _parse(query: str, max_tokens: int) -> _Prepared:
    key = (query, max_tokens)
    prepared = _prepared.get(key)
    if prepared is None:
        # Comments count as tokens too: they cost the lexer as much.
        prepared = _Prepared(parse(query, max_tokens=max_tokens))
        _prepared.put(key, prepared, 1000 + PREPARED_BYTES_PER_CHARACTER * len(query))
    return prepared


def _validate(
    schema: GraphQLSchema, document: DocumentNode, rules: tuple[type[ASTValidationRule], ...], hide_suggestions: bool
) -> list[GraphQLError]:
    return validate(
        schema, document, (*rules, MaybeNullValidationRule, OneOfInputValidationRule), hide_suggestions=hide_suggestions
    )


class DocumentLimits(SchemaExtension):
    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        settings = ctx.context.settings
        if ctx.query and ctx.graphql_document is None:
            try:
                ctx.graphql_document = _parse(ctx.query, settings.max_tokens).document
            except GraphQLError as error:
                refusal = _parse_refusal(error.message, max_tokens=settings.max_tokens, max_depth=settings.max_depth)
                if refusal is not None:
                    raise GraphQLError(refusal.message, extensions=refusal.extensions) from None
                # Any other syntax error: Strawberry parses again and reports it the usual way.
        yield

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        settings = ctx.context.settings
        if ctx.query and ctx.graphql_document is not None and ctx.pre_execution_errors is None:
            prepared = _parse(ctx.query, settings.max_tokens)  # the record on_parse made: one dict lookup
            errors = prepared.check(ctx.schema._schema, ctx.validation_rules, settings)
            ctx.pre_execution_errors = list(errors)  # a copy: the cached list is shared
            # The name the caller gave: Strawberry's ``operation_name`` falls back to the first operation's.
            given = getattr(ctx, "_provided_operation_name", None)
            if not errors and given is None and _operations(prepared.document) > 1:
                # GraphQL's GetOperation: a request error. (Strawberry would run the first operation.)
                message = "the document holds several operations: name the one to run with `operationName`"
                ctx.pre_execution_errors = [GraphQLError(message)]
        yield


def _operations(document: DocumentNode) -> int:
    return sum(isinstance(definition, OperationDefinitionNode) for definition in document.definitions)


def _parse_refusal(message: str, *, max_tokens: int, max_depth: int) -> QueryTooComplex | None:
    if _TOKENS_MESSAGE in message:
        return QueryTooComplex(
            f"the document has more than {max_tokens} tokens (GRAPH_MAX_TOKENS)",
            setting="GRAPH_MAX_TOKENS",
            limit=max_tokens,
        )
    if _NESTING_MESSAGE in message:  # deeper than Python's recursion: far past any depth limit
        return QueryTooComplex(
            f"the document is nested deeper than {max_depth} fields (GRAPH_MAX_DEPTH)",
            setting="GRAPH_MAX_DEPTH",
            limit=max_depth,
        )
    return None


@dataclass(frozen=True)
class Shape:
    depth: int  # deepest field nesting of any operation (capped just past the limit)
    aliases: int  # aliased fields, fragments counted once per spread (capped just past the limit)


def check_shape(document: DocumentNode, *, max_depth: int, max_aliases: int) -> QueryTooComplex | None:
    """The refusal for a document deeper or with more aliases than allowed, or None."""
    try:
        shape = measure(document, max_depth=max_depth, max_aliases=max_aliases)
    except RecursionError:  # thousands of fragments spreading one another: nobody writes that by hand
        return QueryTooComplex("the document nests fragments too deeply", setting="GRAPH_MAX_DEPTH", limit=max_depth)
    if shape.depth > max_depth:
        return QueryTooComplex(
            f"the document is nested deeper than {max_depth} fields (GRAPH_MAX_DEPTH)",
            setting="GRAPH_MAX_DEPTH",
            limit=max_depth,
        )
    if shape.aliases > max_aliases:
        return QueryTooComplex(
            f"the document uses more than {max_aliases} aliases (GRAPH_MAX_ALIASES)",
            setting="GRAPH_MAX_ALIASES",
            limit=max_aliases,
        )
    return None


def measure(document: DocumentNode, *, max_depth: int, max_aliases: int) -> Shape:
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    walk = _Walk(fragments, depth_cap=max_depth + 1, alias_cap=max_aliases + 1)
    depth = aliases = 0
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            d, a = walk.selection_set(definition.selection_set, 0)
            depth, aliases = max(depth, d), min(walk.alias_cap, aliases + a)
    return Shape(depth, aliases)


class _Walk:
    """Depth and aliases of selection sets; each fragment is measured once and remembered (relative depth)."""

    def __init__(self, fragments: Mapping[str, FragmentDefinitionNode], *, depth_cap: int, alias_cap: int) -> None:
        self.fragments = fragments
        self.depth_cap = depth_cap
        self.alias_cap = alias_cap
        self.memo: dict[str, tuple[int, int]] = {}
        self.visiting: set[str] = set()

    def selection_set(self, selection_set: SelectionSetNode, level: int) -> tuple[int, int]:
        """(depth below this set, aliases in it); stops descending once the depth cap is passed."""
        if level >= self.depth_cap:
            return 0, 0
        depth = aliases = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                d = 1
                aliases += selection.alias is not None
                if selection.selection_set is not None:
                    below, a = self.selection_set(selection.selection_set, level + 1)
                    d, aliases = 1 + below, aliases + a
            elif isinstance(selection, InlineFragmentNode):
                d, a = self.selection_set(selection.selection_set, level)
                aliases += a
            elif isinstance(selection, FragmentSpreadNode):
                d, a = self.fragment(selection)
                aliases += a
            depth = max(depth, d)
            aliases = min(aliases, self.alias_cap)
        return min(depth, self.depth_cap), aliases

    def fragment(self, spread: FragmentSpreadNode) -> tuple[int, int]:
        name = spread.name.value
        fragment = self.fragments.get(name)
        if fragment is None or name in self.visiting:
            return 0, 0  # unknown or cyclic: validation reports it (and refuses the document)
        if name not in self.memo:
            self.visiting.add(name)
            # Measured from level 0: a fragment's depth is relative to where it is spread.
            self.memo[name] = self.selection_set(fragment.selection_set, 0)
            self.visiting.discard(name)
        return self.memo[name]
