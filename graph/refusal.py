"""The one shape of an HTTP-level refusal: a GraphQL-style JSON error with ``extensions.code``."""

from __future__ import annotations

from starlette.responses import JSONResponse


def refusal(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status, headers)
