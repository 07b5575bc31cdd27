"""Reading a v2 gateway body without trusting it.

The signature covers the response node's text exactly as it stands in the body. We walk the top-level
object once with the JSON decoder's own scanner (so quotes, escapes and nesting are handled as JSON
defines them), keep each member's raw text, refuse any member named twice (a second node after the
signed one is how forged answers get past ``json.loads(body)[node]``), and parse only the slice whose
signature was checked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from graph.gateway.errors import GatewayProtocolError, SignatureError

_DECODER = json.JSONDecoder()
_WS = " \t\n\r"
ERROR_NODE = "error_response"


@dataclass(frozen=True, slots=True)
class Member:
    raw: str  # the value's text exactly as in the body
    value: Any  # the value parsed from that text alone


def top_level_members(body: str) -> dict[str, Member]:
    """Split a JSON object into its members, raw text kept; a repeated member name is refused."""
    members: dict[str, Member] = {}
    i = _skip_ws(body, 0)
    if body[i : i + 1] != "{":
        raise GatewayProtocolError("gateway body is not a JSON object")
    i = _skip_ws(body, i + 1)
    if body[i : i + 1] == "}":
        return _end(body, i + 1, members)
    while True:
        if body[i : i + 1] != '"':
            raise GatewayProtocolError("gateway body is not valid JSON")
        name, i = _decode(body, i)
        i = _skip_ws(body, i)
        if body[i : i + 1] != ":":
            raise GatewayProtocolError("gateway body is not valid JSON")
        start = _skip_ws(body, i + 1)
        value, end = _decode(body, start)
        if name in members:
            raise SignatureError(f"gateway body names {name!r} twice; refusing an ambiguous answer")
        members[name] = Member(body[start:end], value)
        i = _skip_ws(body, end)
        if body[i : i + 1] == ",":
            i = _skip_ws(body, i + 1)
            continue
        if body[i : i + 1] == "}":
            return _end(body, i + 1, members)
        raise GatewayProtocolError("gateway body is not valid JSON")


def _decode(body: str, i: int) -> tuple[Any, int]:
    try:
        return _DECODER.raw_decode(body, i)
    except json.JSONDecodeError:
        raise GatewayProtocolError("gateway body is not valid JSON") from None
    except RecursionError:  # [[[[...]]]] thousands deep: the decoder recurses once a level
        raise GatewayProtocolError("gateway body nests too deeply to be an answer") from None


def _skip_ws(body: str, i: int) -> int:
    while i < len(body) and body[i] in _WS:
        i += 1
    return i


def _end(body: str, i: int, members: dict[str, Member]) -> dict[str, Member]:
    if _skip_ws(body, i) != len(body):
        raise GatewayProtocolError("gateway body has text after the JSON object")
    return members


@dataclass(frozen=True, slots=True)
class GatewayAnswer:
    """The node to verify and what came with it."""

    node_name: str
    node: Member
    sign: str | None
    cert_sn: str | None


def find_answer(body: str, method: str) -> GatewayAnswer:
    """Pick the response node (``<method>_response`` or ``error_response``) and the signature."""
    members = top_level_members(body)
    expected = method.replace(".", "_") + "_response"
    present = [name for name in (expected, ERROR_NODE) if name in members]
    if len(present) != 1:
        raise GatewayProtocolError(f"gateway body has {'no' if not present else 'more than one'} response node")
    node_name = present[0]
    sign = members.get("sign")
    cert_sn = members.get("alipay_cert_sn")
    if sign is not None and not isinstance(sign.value, str):
        raise GatewayProtocolError("gateway body's sign is not a string")
    return GatewayAnswer(
        node_name=node_name,
        node=members[node_name],
        sign=sign.value if sign is not None else None,
        cert_sn=cert_sn.value if cert_sn is not None and isinstance(cert_sn.value, str) else None,
    )
