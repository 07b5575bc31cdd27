"""A GraphQL document's significant tokens: what the response cache keys on and the safelist compares.

A lexer just good enough to drop what GraphQL ignores (white space, commas, comments) and keep every other token
exactly, strings included. It may fail to merge two equivalent spellings (a miss); it never merges two different
documents, because tokens are only ever re-joined, not changed.
"""

from __future__ import annotations

import re

from graph.data.lru import SizedLRU

MEMO_BYTES = 8 * 1024 * 1024

_TOKEN = re.compile(
    r'(?P<string>"""(?:[^"\\]|\\.|"(?!""))*"""|"(?:[^"\\\n]|\\.)*")'
    r"|(?P<skip>[\s,]+|#[^\n\r]*)"
    r"|(?P<punct>[!$&()\[\]{}:=@|])"
    r'|(?P<word>[^\s,#"!$&()\[\]{}:=@|]+)'
    r"|(?P<other>.)",  # a stray quote: not a valid document, so keep it as sent
    re.DOTALL,
)
# Clients send the same few documents over and over: a hit costs a dict lookup. Bounded in bytes (text in and out).
_memo: SizedLRU[str, str] = SizedLRU(MEMO_BYTES)


def normalise(document: str) -> str:
    """The document's significant tokens, a space only between two words."""
    known = _memo.get(document)
    if known is not None:
        return known
    out: list[str] = []
    previous_word = False
    result = None
    for match in _TOKEN.finditer(document):
        kind = match.lastgroup
        if kind == "other":
            result = document
            break
        if kind == "skip":
            continue
        word = kind == "word"
        if word and previous_word:
            out.append(" ")
        out.append(match.group())
        previous_word = word
    if result is None:
        result = "".join(out)
    _memo.put(document, result, 2 * len(document) + len(result) + 100)
    return result
