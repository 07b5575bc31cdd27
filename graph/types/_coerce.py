"""Tolerant readers for the JSON values of a verified gateway answer.

The answer is signed, so it is Alipay's, but its shape is only documented, not promised: every reader
here takes whatever JSON gave (``object``) and returns the typed value or ``None``; none of them raises.
Values we cannot use are logged once per (what, value), in a bounded memory.
"""

from __future__ import annotations

import logging
import re
import reprlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

T = TypeVar("T")

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
REMEMBERED_MAX = 1024

_log = logging.getLogger(__name__)
_GRAY = re.compile(r"p(\d{1,3})", re.IGNORECASE | re.ASCII)
_BOOLEANS = {"true": True, "false": False}

# Short, escaped renderings keep a hostile value from flooding the log or the memory below.
_repr = reprlib.Repr()
_repr.maxstring = 80
_repr.maxother = 80

_remembered: OrderedDict[tuple[str, str], None] = OrderedDict()
_remembered_lock = threading.Lock()


def warn_once(message: str, what: str, value: object) -> None:
    """Log ``message % (what, value)`` at WARNING unless this (what, value) was logged recently."""
    shown = _repr.repr(value)
    key = (what, shown)
    with _remembered_lock:
        if key in _remembered:
            _remembered.move_to_end(key)
            return
        _remembered[key] = None
        if len(_remembered) > REMEMBERED_MAX:
            _remembered.popitem(last=False)
    _log.warning(message, what, shown)


def text(value: object) -> str | None:
    """A string as is; a JSON number or boolean as its text; anything else None."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        try:
            return str(value)
        except ValueError:  # an int longer than sys.get_int_max_str_digits()
            return None
    return None


def text_list(value: object) -> list[str] | None:
    """A list of strings; a string is taken as comma-separated items (the doc says so), blanks dropped."""
    if isinstance(value, str):
        return [item for item in (part.strip() for part in value.split(",")) if item]
    if not isinstance(value, list):
        return None
    return [item for item in map(text, value) if item is not None]


def objects(build: Callable[[Mapping[str, Any]], T], value: object) -> list[T] | None:
    """Build each JSON object of a list; items that are not objects are dropped."""
    if not isinstance(value, list):
        return None
    return [build(item) for item in value if isinstance(item, Mapping)]


def one(build: Callable[[Mapping[str, Any]], T], value: object) -> T | None:
    return build(value) if isinstance(value, Mapping) else None


def boolean(value: object) -> bool | None:
    """JSON true/false, or the text "true"/"false" in any case; anything else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _BOOLEANS.get(value.strip().lower())
    return None


def beijing_time(value: object, what: str) -> datetime | None:
    """``yyyy-MM-dd HH:mm:ss`` in Beijing time (any ISO 8601 form is accepted) as an aware datetime in +08:00."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
            # A time with its own offset is moved to +08:00; near year 1 or 9999 that can overflow.
            return parsed.replace(tzinfo=BEIJING) if parsed.tzinfo is None else parsed.astimezone(BEIJING)
        except (ValueError, OverflowError):
            pass
    warn_once("unparseable %s value %s from the gateway; using null", what, value)
    return None


def gray_percentage(strategy: str | None) -> int | None:
    """10 for ``p10`` (any case); None unless the strategy is ``p`` and a percentage 0..100."""
    if strategy is None:
        return None
    match = _GRAY.fullmatch(strategy.strip())
    if match is None:
        return None
    percent = int(match.group(1))
    return percent if percent <= 100 else None
