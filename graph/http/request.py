"""A GraphQL-over-HTTP request, parsed once: every later step (access, persisted queries, the response cache, the
executor) reads this one immutable object, so no two of them can read a request differently.

The rules are the GraphQL over HTTP working draft's:

- GET: the parameters ``query``, ``operationName``, ``variables`` and ``extensions`` (the last two JSON text);
  a parameter given twice is refused, as is any that is not text in UTF-8.
- POST: only ``application/json`` (any parameters, such as ``charset``) is JSON; anything else is 415. Keys given
  twice in the JSON object are read as orjson reads them (the last wins), once, here, for every step.
- ``query`` and ``operationName`` are strings, ``variables`` and ``extensions`` objects, each optional or null.
- ``Accept`` picks the answer's media type: ``application/graphql-response+json`` whenever it is acceptable at
  least as much as ``application/json``; ``application/json`` for ``*/*``, ``application/*`` or no Accept;
  neither acceptable: 406.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import unquote_to_bytes

import orjson

GRAPHQL_RESPONSE_JSON: Final = "application/graphql-response+json"
JSON: Final = "application/json"
MediaType = Literal["application/graphql-response+json", "application/json"]

_PARAMETERS = frozenset(("query", "operationName", "variables", "extensions"))


@dataclass(frozen=True, slots=True)
class GraphQLRequest:
    """One operation as the caller asked for it."""

    method: Literal["GET", "POST"]
    query: str | None
    operation_name: str | None = None
    variables: dict[str, Any] | None = field(default=None, hash=False)
    extensions: dict[str, Any] | None = field(default=None, hash=False)
    media_type: MediaType = JSON


class RequestError(Exception):
    """A request refused before anything ran: its HTTP status and a message safe to show the caller."""

    def __init__(
        self, status: int, message: str, headers: dict[str, str] | None = None, code: str = "BAD_REQUEST"
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.code = code


def negotiate(accept: str | None) -> MediaType | None:
    """The answer's media type for an ``Accept`` header, or None when the caller accepts neither kind."""
    if not accept:
        return JSON
    if accept == GRAPHQL_RESPONSE_JSON or accept.startswith(GRAPHQL_RESPONSE_JSON + ","):
        return GRAPHQL_RESPONSE_JSON  # the common case of Apollo Client 4 and graphql-http, without the parse
    best_response, best_json = 0.0, 0.0
    for part in accept.split(","):
        media, _, parameters = part.partition(";")
        media = media.strip().lower()
        quality = _quality(parameters)
        if media == GRAPHQL_RESPONSE_JSON:
            best_response = max(best_response, quality)
        elif media in (JSON, "application/*", "*/*"):
            best_json = max(best_json, quality)
    if best_response > 0 and best_response >= best_json:
        return GRAPHQL_RESPONSE_JSON
    if best_json > 0:
        return JSON
    return None


def _quality(parameters: str) -> float:
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(value.strip())
            except ValueError:
                return 0.0
            return quality if 0.0 <= quality <= 1.0 else 0.0
    return 1.0


def is_json_content_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.partition(";")[0].strip().lower()
    return media == JSON


def parse_get(query_string: bytes, media_type: MediaType) -> GraphQLRequest:
    """A GET's parameters, each at most once; unknown parameters are ignored (caches add their own)."""
    fields: dict[str, str] = {}
    for pair in query_string.split(b"&"):
        if not pair:
            continue
        raw_name, _, raw_value = pair.partition(b"=")
        name = _decode(raw_name)
        if name not in _PARAMETERS:
            continue
        if name in fields:
            raise RequestError(400, f"the parameter {name!r} is given more than once")
        fields[name] = _decode(raw_value)
    variables = _json_parameter(fields, "variables")
    extensions = _json_parameter(fields, "extensions")
    return _build("GET", fields.get("query"), fields.get("operationName"), variables, extensions, media_type)


def _decode(raw: bytes) -> str:
    try:
        return unquote_to_bytes(raw.replace(b"+", b" ")).decode()
    except UnicodeDecodeError:
        raise RequestError(400, "the query string is not UTF-8 text") from None


def _json_parameter(fields: dict[str, str], name: str) -> Any:
    text = fields.get(name)
    if text is None or text == "":
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        raise RequestError(400, f"the {name!r} parameter is not valid JSON") from None


def parse_post_body(body: bytes) -> Any:
    """The JSON value of a POST body (an object, or a list for a batch: the caller checks which)."""
    if not body:
        raise RequestError(400, 'the request body is empty: send a JSON object such as {"query": "{ ... }"}')
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise RequestError(400, "the request body is not valid JSON (in UTF-8)") from None


def from_json_object(value: Any, media_type: MediaType) -> GraphQLRequest:
    if not isinstance(value, dict):
        raise RequestError(400, 'the request body must be a JSON object such as {"query": "{ ... }"}')
    return _build(
        "POST",
        value.get("query"),
        value.get("operationName"),
        value.get("variables"),
        value.get("extensions"),
        media_type,
    )


def _build(
    method: Literal["GET", "POST"],
    query: Any,
    operation_name: Any,
    variables: Any,
    extensions: Any,
    media_type: MediaType,
) -> GraphQLRequest:
    for name, value, kind in (
        ("query", query, str),
        ("operationName", operation_name, str),
        ("variables", variables, dict),
        ("extensions", extensions, dict),
    ):
        if value is not None and not isinstance(value, kind):
            article = "an object" if kind is dict else "a string"
            raise RequestError(400, f"the request's `{name}` must be {article} or null")
    return GraphQLRequest(method, query, operation_name or None, variables, extensions, media_type)
