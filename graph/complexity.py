"""Document limits, all checked before validation and long before any gateway call (``QUERY_TOO_COMPLEX``).

- tokens (GRAPH_MAX_TOKENS): the parser stops counting at the limit, so a huge document costs no more than a
  small one to refuse;
- depth (GRAPH_MAX_DEPTH) and aliases (GRAPH_MAX_ALIASES), measured through fragments, before validation runs:
  graphql-core's validation is itself the expensive part for a document of 1000 aliases.

Strawberry's QueryDepthLimiter and MaxAliasesLimiter walk every fragment spread again (exponential on a
chain of fragments that spread the next one twice) and report plain errors without a code; these walks visit
each fragment once. Field suggestions ("Did you mean ...?") tell an outsider the schema: with introspection off,
validation runs here with them hidden.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    validate,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from graph.errors import QueryTooComplex

# graphql-core's wording when its parser stops at a limit: ours, or Python's recursion limit.
_TOKENS_MESSAGE = "Document contains more than"
_NESTING_MESSAGE = "Document is nested too deeply"


class DocumentLimits(SchemaExtension):
    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        limit = ctx.context.settings.max_tokens
        ctx.parse_options["max_tokens"] = limit  # comments count too: they cost the lexer as much
        yield
        for error in ctx.pre_execution_errors or ():
            refusal = None
            if _TOKENS_MESSAGE in error.message:
                refusal = QueryTooComplex(
                    f"the document has more than {limit} tokens (GRAPH_MAX_TOKENS)",
                    setting="GRAPH_MAX_TOKENS",
                    limit=limit,
                )
            elif _NESTING_MESSAGE in error.message:  # deeper than Python's recursion: far past any depth limit
                depth = ctx.context.settings.max_depth
                refusal = QueryTooComplex(
                    f"the document is nested deeper than {depth} fields (GRAPH_MAX_DEPTH)",
                    setting="GRAPH_MAX_DEPTH",
                    limit=depth,
                )
            if refusal is not None:
                error.message, error.extensions = refusal.message, refusal.extensions
                error.args = (refusal.message,)

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        settings = ctx.context.settings
        if ctx.graphql_document is not None:
            problem = check_shape(ctx.graphql_document, max_depth=settings.max_depth, max_aliases=settings.max_aliases)
            if problem is not None:
                # Set before validation: Strawberry then skips it, and the refusal is all the caller gets.
                ctx.pre_execution_errors = [GraphQLError(problem.message, extensions=problem.extensions)]
            elif not settings.introspection:
                rules = (*ctx.validation_rules, MaybeNullValidationRule, OneOfInputValidationRule)
                ctx.pre_execution_errors = validate(
                    ctx.schema._schema, ctx.graphql_document, rules, hide_suggestions=True
                )
        yield


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
