"""Faults a test can switch on per endpoint: POST /_sandbox/faults, POST /_sandbox/faults/clear.

Each fault has an endpoint ("fetch", "list_by_condition", "image_seed", "image", or "*"), a
kind, an optional count of requests it applies to (`times`, default: until cleared) and the
kind's own parameters.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

KINDS = {
    "latency",  # {seconds}: answer normally, but late
    "drip",  # {seconds}: send the normal answer one byte at a time, `seconds` apart
    "status",  # {status, body?, content_type?}: e.g. 500 or 502
    "rate_limit",  # {retry_after}: 429 with Retry-After and an empty body (trueai)
    "overload",  # new-api's 503 system_cpu_overloaded JSON
    "garbage",  # 200 application/json that is not JSON
    "truncated",  # the normal answer cut in half, with the full Content-Length promised
    "reset",  # the connection is reset before any answer
    "html",  # 200 text/html (a CDN challenge page or an SPA)
    "duplicates",  # list-by-condition: every row twice, one copy with an older state (E15)
    "shuffle",  # list-by-condition: rows in reverse order
    "expired",  # image: {status: 403|404} with new-api's passthrough {"error": "..."}
    "oversized",  # image: {mb} megabytes of PNG-typed bytes
    "redirect",  # {location}: a 302 elsewhere
}


@dataclass
class Fault:
    endpoint: str
    kind: str
    times: int | None = None
    params: dict[str, Any] = field(default_factory=dict)


class Faults:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, spec: dict[str, Any]) -> Fault:
        spec = dict(spec)
        kind = spec.pop("kind")
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {sorted(KINDS)}")
        fault = Fault(spec.pop("endpoint", "*"), kind, spec.pop("times", None), spec)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, endpoint: str) -> Fault | None:
        """The first fault for this endpoint, counting one use of it."""
        with self._lock:
            for fault in self._faults:
                if fault.endpoint in (endpoint, "*"):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None
