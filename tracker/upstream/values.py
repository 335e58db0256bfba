"""Gateway JSON values made safe: plain text out of anything, and whole answers cleaned of
what no column or page can hold."""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_JSON_DEPTH = 20  # deeper parts of a gateway's JSON are dropped at the boundary
# A NUL or a lone surrogate can only arrive as these bytes: a raw NUL, or a \u escape.
UNSAFE_TEXT = re.compile(rb"\x00|\\u0000|\\u[dD][89a-fA-F]")


def loads(body: bytes) -> Any:
    """Parse a gateway's JSON answer into safe values. Infinities become None as they are
    parsed; the slower full clean() runs only when the bytes hold a NUL or a surrogate
    escape, or the value nests deeper than MAX_JSON_DEPTH. Raises ValueError (not JSON) or
    RecursionError (nested beyond what the parser can take)."""
    value = json.loads(body, parse_constant=lambda name: None, parse_float=_finite)
    if UNSAFE_TEXT.search(body) or _deeper_than(value, MAX_JSON_DEPTH):
        return clean(value)
    return value


def _finite(text: str) -> float | None:
    number = float(text)
    return number if math.isfinite(number) else None


def _deeper_than(value: Any, limit: int) -> bool:
    """Does `value` nest containers more than `limit` deep? Walks containers only."""
    stack = [(value, 0)] if isinstance(value, (dict, list)) else []
    while stack:
        item, depth = stack.pop()
        if depth >= limit:
            return True
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
    return False


def _text(value: Any) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    return str(value)


def clean(value: Any, depth: int = 0) -> Any:
    """Gateway JSON made safe to store: NUL characters and lone surrogates removed from every
    string and key (PostgreSQL refuses them), infinities dropped, and anything nested deeper than
    MAX_JSON_DEPTH dropped, so one odd task can neither break a save nor a page."""
    if isinstance(value, str):  # lone surrogates cannot be stored or rendered either
        return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, float) and not math.isfinite(value):
        return None  # 1e999 parses as inf, which no JSON column will store
    if depth >= MAX_JSON_DEPTH and isinstance(value, (dict, list)):
        return None
    if isinstance(value, dict):
        return {clean(k): clean(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v, depth + 1) for v in value]
    return value
