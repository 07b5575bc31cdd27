"""Parsing and validation, cached, with the document limits in front of them (``QUERY_TOO_COMPLEX``).

- tokens (GRAPH_MAX_TOKENS): the parser stops counting at the limit, so a huge document costs no more than a
  small one to refuse;
- depth (GRAPH_MAX_DEPTH) and aliases (GRAPH_MAX_ALIASES), measured through fragments before validation runs:
  graphql-core's validation is itself the expensive part for a document of 1000 aliases.

Parsing and validating a 68-field query costs most of a request's CPU; both are pure functions of the document
text, so both are memoised per process (``Services.parsed``), bounded by GRAPH_CACHE_MAX_BYTES of what they keep
(Strawberry's ParserCache and ValidationCache would run around the limits, not behind them, and bound entries: 512
parsed 14 KB documents are ~650 MB). A miss runs on one worker thread, not on the event loop: validating a 14 KB
document of repeated fields takes graphql-core 0.2 to 2 s (OverlappingFieldsCanBeMerged is quadratic), and
``/healthz`` must keep answering meanwhile. Strawberry's QueryDepthLimiter and MaxAliasesLimiter walk every
fragment spread again (exponential on a chain of fragments that spread the next one twice) and report plain errors
without a code; these walks visit each fragment once. Field suggestions ("Did you mean ...?") tell an outsider the
schema: with introspection off, validation hides them.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

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

from graph.errors import QueryTooComplex

# What a parsed document costs, kept: graphql-core keeps every token (a linked list the AST's locations point
# into) beside the nodes. Measured with tracemalloc on eight documents (a 50-character query, the 68-field benchmark
# operation, the introspection query, 14 KB of repeated fields, 4 KB of one-letter fields, 1,000 unused variables,
# a 60 KB comment): 415 to 613 bytes a token, up to 275 times the text's length, plus the text once more (comments
# and strings are kept as values). Counted as 640 bytes a token plus twice the text; each validation error 2 KiB.
TOKEN_BYTES = 640
ERROR_BYTES = 2048
# graphql-core's wording when its parser stops at a limit: ours, or Python's recursion limit.
_TOKENS_MESSAGE = "Document contains more than"
_NESTING_MESSAGE = "Document is nested too deeply"
# One thread: misses wait their turn (a flood of new documents costs one core, not the event loop), and at most one
# document being parsed or validated is held beside the memo. Small ones stay on the loop, where the hop would cost
# more than the work: a document of up to 1 KiB parses in < 5 ms, one of up to 128 tokens validates in < 5 ms
# (measured on documents of repeated fields, the worst case: 512 tokens took 72 ms, 1,000 took 300 ms).
_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="graph-documents")
INLINE_PARSE_CHARS = 1024
INLINE_VALIDATE_TOKENS = 128
# While the worker runs, the GIL changes hands every 0.5 ms instead of every 5: the loop gives the GIL up at each of
# the system calls one request makes and may wait a whole interval to get it back (the convoy effect). Measured
# while 14 KB documents of one repeated field were validated: /healthz p99 94 ms at 5 ms, 65 ms at 0.5 ms.
WORKER_SWITCH_INTERVAL_S = 0.0005
R = TypeVar("R")


def _yielding(function: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(WORKER_SWITCH_INTERVAL_S)  # one worker: no other call overlaps this one
    try:
        return function(*args, **kwargs)
    finally:
        sys.setswitchinterval(previous)


async def _run(inline: bool, function: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    if inline:
        return function(*args, **kwargs)
    work = functools.partial(_yielding, function, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_WORKER, work)


def _validate(
    schema: GraphQLSchema, document: DocumentNode, rules: tuple[type[ASTValidationRule], ...], hide_suggestions: bool
) -> list[GraphQLError]:
    return validate(
        schema, document, (*rules, MaybeNullValidationRule, OneOfInputValidationRule), hide_suggestions=hide_suggestions
    )


@dataclass(eq=False)
class Parsed:
    """A memoised document and its validation results (by schema, rules and whether suggestions are hidden)."""

    document: DocumentNode
    size: int
    tokens: int
    validated: dict[tuple[Any, ...], list[GraphQLError]] = field(default_factory=dict)


def tokens(document: DocumentNode) -> int:
    """How many tokens the document's text had (graphql-core keeps them all, linked, from its location)."""
    count, token = 0, document.loc.start_token if document.loc is not None else None
    while token is not None:
        count += 1
        token = token.next
    return count


def document_size(text: str, token_count: int) -> int:
    """The bytes a parsed document of ``token_count`` tokens holds, as the memo counts them."""
    return TOKEN_BYTES * max(token_count, 1) + 2 * sys.getsizeof(text)


class DocumentLimits(SchemaExtension):
    parsed: Parsed | None = None  # what on_parse memoised or found, for on_validate (an instance per request)

    async def on_parse(self) -> AsyncIterator[None]:
        ctx = self.execution_context
        settings = ctx.context.settings
        if ctx.query and ctx.graphql_document is None:
            memo = ctx.context.services.parsed
            key = (ctx.query, settings.max_tokens)
            self.parsed = memo.get(key)
            if self.parsed is None:
                try:
                    # Comments count as tokens too: they cost the lexer as much.
                    inline = len(ctx.query) <= INLINE_PARSE_CHARS
                    document = await _run(inline, parse, ctx.query, max_tokens=settings.max_tokens)
                except GraphQLError as error:
                    refusal = _parse_refusal(
                        error.message, max_tokens=settings.max_tokens, max_depth=settings.max_depth
                    )
                    if refusal is not None:
                        raise GraphQLError(refusal.message, extensions=refusal.extensions) from None
                    # Any other syntax error, with the code error masking gives it: left to Strawberry, the document
                    # would be parsed again, on the loop.
                    error.extensions = {**(error.extensions or {}), "code": "GRAPHQL_PARSE_FAILED"}
                    raise
                else:
                    count = tokens(document)
                    self.parsed = Parsed(document, document_size(ctx.query, count), count)
                    memo.put(key, self.parsed, self.parsed.size)
            if self.parsed is not None:
                ctx.graphql_document = self.parsed.document
        yield

    async def on_validate(self) -> AsyncIterator[None]:
        ctx = self.execution_context
        settings = ctx.context.settings
        if ctx.graphql_document is not None and ctx.pre_execution_errors is None:
            problem = check_shape(ctx.graphql_document, max_depth=settings.max_depth, max_aliases=settings.max_aliases)
            if problem is not None:
                # Instead of validation: the refusal is all the caller gets, and validation never runs.
                ctx.pre_execution_errors = [GraphQLError(problem.message, extensions=problem.extensions)]
            else:
                errors = await self._validated(ctx.graphql_document, not settings.introspection)
                ctx.pre_execution_errors = list(errors)  # a copy: the memoised list is shared
                # The name the caller gave: Strawberry's ``operation_name`` falls back to the first operation's.
                given = getattr(ctx, "_provided_operation_name", None)
                if not errors and given is None and _operations(ctx.graphql_document) > 1:
                    # GraphQL's GetOperation: a request error. (Strawberry would run the first operation.)
                    message = "the document holds several operations: name the one to run with `operationName`"
                    ctx.pre_execution_errors = [GraphQLError(message)]
        yield

    async def _validated(self, document: DocumentNode, hide_suggestions: bool) -> list[GraphQLError]:
        ctx = self.execution_context
        schema, rules = ctx.schema._schema, ctx.validation_rules
        parsed = self.parsed
        if parsed is None or parsed.document is not document:  # not a document this memo parsed: not kept
            return await _run(False, _validate, schema, document, rules, hide_suggestions)
        key = (schema, rules, hide_suggestions)
        errors = parsed.validated.get(key)
        if errors is None:
            inline = parsed.tokens <= INLINE_VALIDATE_TOKENS
            errors = await _run(inline, _validate, schema, document, rules, hide_suggestions)
            parsed.validated[key] = errors
            parsed.size += ERROR_BYTES * len(errors)
            ctx.context.services.parsed.put((ctx.query, ctx.context.settings.max_tokens), parsed, parsed.size)
        return errors


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
