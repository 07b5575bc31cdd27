"""``extensions.cacheAge``: how old the oldest cached answer an operation used was, in whole seconds."""

from __future__ import annotations

import math
from typing import Any

from strawberry.extensions import SchemaExtension


class CacheAge(SchemaExtension):
    def get_results(self) -> dict[str, Any]:
        ages = getattr(self.execution_context.context, "cache_ages", None)
        if not ages:
            return {}  # the operation used no gateway answer (introspection, _service, refused early)
        return {"cacheAge": math.floor(max(ages))}
