"""How fresh an operation's answers are: ``extensions.cacheAge``, and how long the whole response may be reused.

Every gateway answer a resolver uses is recorded here with its age and how long it may still be reused; the
response cache (``graph.http.response_cache``) reads the result once the operation has run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Freshness:
    ages: list[float] = field(default_factory=list)
    ttl_left: float = math.inf  # the shortest remaining lifetime of the answers used
    cacheable: bool = True  # False once any answer must not be reused (transient failures, masked errors)
    stale: bool = False  # an answer used was served past its expiry while the gateway was unavailable

    def used(self, age_s: float, ttl_left_s: float | None) -> None:
        """Record one answer: its age, and how long it may still be reused (None: never)."""
        self.ages.append(age_s)
        if ttl_left_s is None:
            self.cacheable = False
        else:
            self.ttl_left = min(self.ttl_left, ttl_left_s)

    @property
    def age_s(self) -> float:
        return max(self.ages, default=0.0)


def no_cache(cache_control: str) -> bool:
    """``no-cache`` (or ``max-age=0``, what browsers send on reload): skip cached answers and refresh them."""
    for part in cache_control.lower().split(","):
        name, _, value = part.strip().partition("=")
        if name == "no-cache" or (name == "max-age" and value.strip() == "0"):
            return True
    return False
