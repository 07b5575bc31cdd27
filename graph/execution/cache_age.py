"""``extensions.cacheAge``: how old the oldest gateway answer an operation used was, in whole seconds; and
``extensions.stale: true`` beside it when one was served past its expiry because the gateway was unavailable."""

from __future__ import annotations

import math
from typing import Any

from strawberry.extensions import SchemaExtension


class CacheAge(SchemaExtension):
    def get_results(self) -> dict[str, Any]:
        freshness = getattr(self.execution_context.context, "freshness", None)
        if freshness is None or not freshness.ages:
            return {}  # the operation used no gateway answer (introspection, _service, refused early)
        result: dict[str, Any] = {"cacheAge": math.floor(freshness.age_s)}
        if freshness.stale:
            result["stale"] = True
        return result
