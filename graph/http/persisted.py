"""Persisted queries, as one step of the edge: a parsed request in, the request to run (or a refusal) out.

- ``apq``: Apollo's automatic persisted queries. A known hash runs its document; an unknown one answers
  ``PersistedQueryNotFound`` (HTTP 200, as Apollo Server does; Apollo Client then sends the text with the hash).
  Text with a hash must hash to it and be at most GRAPH_APQ_MAX_DOCUMENT_BYTES long (``BAD_USER_INPUT``
  otherwise, before anything runs) and is registered once it has run. Ids from
  ``GRAPH_OPERATIONS_FILE``, if given, are known from the start.
- ``safelist``: only the manifest's operations run, by id or by the same text (up to what GraphQL ignores: white
  space, commas, comments); anything else is ``PERSISTED_QUERY_NOT_ALLOWED`` (403) before it is parsed.
- ``off``: a request with the extension answers ``PersistedQueryNotSupported``; Apollo Client then stops hashing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graph.data.cache import AnswerCache
from graph.data.lru import SizedLRU
from graph.execution.manifest import Manifest
from graph.http.document import normalise
from graph.http.request import GraphQLRequest

DOCUMENT_PREFIX = "apq:"
RECENT_BYTES = 4 * 1024 * 1024
_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Resolved:
    request: GraphQLRequest  # with the document the persisted query stands for
    register: str | None = None  # register the document under this hash once it has run
    persisted: bool = False  # the caller used a persisted query: "hit", "registered" in its log line


class PersistedQueryRefusal(Exception):
    def __init__(self, status: int, message: str, code: str, cache_control: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.cache_control = status, message, code, cache_control


def _not_found() -> PersistedQueryRefusal:
    # Apollo Client retries on this message or code, with HTTP 200 as Apollo Server sends it; never cached.
    return PersistedQueryRefusal(
        200, "PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND", "private, no-cache, must-revalidate"
    )


def _not_allowed(what: str) -> PersistedQueryRefusal:
    return PersistedQueryRefusal(403, f"{what} is not in the list of allowed operations", "PERSISTED_QUERY_NOT_ALLOWED")


def _bad(message: str) -> PersistedQueryRefusal:
    return PersistedQueryRefusal(400, message, "BAD_USER_INPUT")


class PersistedQueries:
    def __init__(
        self,
        documents: AnswerCache[str],
        *,
        mode: str,
        manifest: Manifest | None = None,
        ttl_s: float = 86400.0,
        max_document_bytes: int = 16384,
    ) -> None:
        self.mode = mode
        self._documents = documents
        self._ttl_s = ttl_s
        self._max_document_bytes = max_document_bytes
        operations = manifest.operations if manifest is not None else ()
        self._by_id: Mapping[str, str] = {operation.id: operation.body for operation in operations}
        self._listed = frozenset(normalise(operation.body) for operation in operations)
        # Documents read from Redis: one never changes under its hash, so a local copy is always right.
        self._recent: SizedLRU[str, str] = SizedLRU(RECENT_BYTES)

    async def resolve(self, request: GraphQLRequest) -> Resolved:
        """The request to run; refusals raise ``PersistedQueryRefusal``."""
        extensions = request.extensions or {}
        persisted = extensions.get("persistedQuery")
        if persisted is None:
            if self.mode == "safelist" and request.query is not None and normalise(request.query) not in self._listed:
                raise _not_allowed("this operation")
            return Resolved(request)
        query, register = await self._document(persisted, request.query)
        return Resolved(dataclasses.replace(request, query=query), register, persisted=True)

    def refuse_batch(self) -> None:
        if self.mode == "safelist":
            raise _not_allowed("a batch of operations")

    async def register(self, digest: str, query: str) -> None:
        """Keep a document that ran, under its hash (before the answer goes out: no race with the next request)."""
        await self._documents.set(DOCUMENT_PREFIX + digest, query, self._ttl_s)

    async def _document(self, persisted: Any, query: str | None) -> tuple[str, str | None]:
        """The text a persisted query stands for, and the hash to register it under once it ran (or None)."""
        if self.mode == "off":
            raise PersistedQueryRefusal(
                200, "PersistedQueryNotSupported", "PERSISTED_QUERY_NOT_SUPPORTED", "private, no-cache"
            )
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            raise _bad("persistedQuery: only version 1 is supported")
        given = persisted.get("sha256Hash")
        if not isinstance(given, str) or not given:
            raise _bad("persistedQuery.sha256Hash must be a string")
        listed = self._by_id.get(given)
        if listed is not None:
            if query is not None and normalise(query) != normalise(listed):
                raise _bad("the query is not the operation listed with this id")
            return listed, None
        if self.mode == "safelist":
            raise _not_allowed(f"the operation with id {given[:64]!r}")
        digest = given.lower()
        if not _HASH.fullmatch(digest):
            raise _bad("persistedQuery.sha256Hash must be 64 hexadecimal digits")
        if query is not None:
            encoded = query.encode()
            if len(encoded) > self._max_document_bytes:
                # Refused before it runs or is hashed: every store of documents (memory, Redis) is bounded per entry.
                raise _bad(
                    f"the document is {len(encoded)} bytes; persisted queries are registered up to"
                    f" {self._max_document_bytes} (GRAPH_APQ_MAX_DOCUMENT_BYTES): send it without persistedQuery"
                )
            if hashlib.sha256(encoded).hexdigest() != digest:
                raise _bad("provided sha does not match query")
            return query, digest
        text = self._recent.get(digest)
        if text is not None:
            return text, None
        text = await self._documents.get(DOCUMENT_PREFIX + digest)
        # A shared store is checked, not trusted: the text must hash to the key it was found under.
        if text is None or hashlib.sha256(text.encode()).hexdigest() != digest:
            raise _not_found()
        if self._documents.name == "redis":
            self._recent.put(digest, text, 2 * len(text) + 164)
        return text, None
