"""Fixed-window counters in the cache (shared by every process when it is Redis): how many
times something happened in the current window, for the rates on API tokens, submits and
notification tests."""

from __future__ import annotations

import math
import time

from django.core.cache import cache


def hit(name: str, window: int) -> tuple[int, int]:
    """Count one more `name` in the current `window` seconds: (how many so far, including
    this one; the whole seconds until the next window)."""
    now = time.time()
    key = f"mjdash:rate:{name}:{int(now // window)}"
    cache.add(key, 0, timeout=window + 1)
    try:
        calls = cache.incr(key)
    except ValueError:  # the window ended between add and incr: this is the new one's first
        cache.add(key, 1, timeout=window + 1)
        calls = 1
    return calls, max(1, math.ceil(window - now % window))
