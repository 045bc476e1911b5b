"""What the proxy accepts from a client, checked before any leg starts (pure functions).

A client value that would break a leg later -- a body nested deeper than the JSON parser's
recursion limit, an ``X-Request-Id`` or ``Authorization`` with bytes that are not printable
ASCII (aiohttp hands them over as surrogate escapes, which cannot be encoded into the
backend's request) -- is a 400 naming the value here, not a 500 halfway through a leg.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_REQUEST_ID = 256
#: default of ProxyConfig.max_json_depth: deeper request bodies are refused before parsing
MAX_JSON_DEPTH = 64


class BadRequest(Exception):
    """The client's request cannot be relayed; the message says why (sent as a 400)."""


_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")

def json_too_deep(raw: bytes, limit: int) -> bool:
    """Does JSON text nest arrays/objects deeper than ``limit``? (Malformed text: whatever
    the brackets say; ``json.loads`` reports the rest.)"""
    # Fast path, in C: fewer opening brackets than the limit cannot nest deeper.
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for match in _BRACKETS.finditer(_STRINGS.sub(b"", raw)):
        if match.group() in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False



def _printable(value: str) -> bool:
    return value.isascii() and value.isprintable()


def parse_body(raw: bytes, max_depth: int = MAX_JSON_DEPTH) -> dict[str, Any]:
    """The JSON object of a completions or chat request, nested at most ``max_depth``."""
    if json_too_deep(raw, max_depth):
        raise BadRequest(f"request body is nested too deeply (more than {max_depth} levels)")
    try:
        body = json.loads(raw)
    except RecursionError:
        raise BadRequest("request body is nested too deeply") from None
    except ValueError:
        raise BadRequest("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def request_id(header: str | None, body: dict[str, Any]) -> str | None:
    """The client's request id: ``X-Request-Id``, else the body's ``request_id`` (vLLM takes
    both, the header first); None when the client gave none."""
    for source, value in (("X-Request-Id", header), ("request_id", body.get("request_id"))):
        if value is None or value == "":
            continue
        if not isinstance(value, str) or not 0 < len(value) <= MAX_REQUEST_ID \
                or not _printable(value):
            raise BadRequest(f"{source} must be 1 to {MAX_REQUEST_ID} printable ASCII "
                             "characters")
        return value
    return None


def check_authorization(value: str | None) -> None:
    """An ``Authorization`` header the proxy may forward (printable ASCII, as RFC 9110 allows
    for a bearer token)."""
    if value is not None and not _printable(value):
        raise BadRequest("the Authorization header must be printable ASCII")
