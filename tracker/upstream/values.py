"""Gateway JSON values made safe: plain text out of anything, and whole answers cleaned of
what no column or page can hold."""

from __future__ import annotations

import math
from typing import Any

MAX_JSON_DEPTH = 20  # deeper parts of a gateway's JSON are dropped at the boundary


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
