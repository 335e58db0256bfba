"""Faults a test can switch on per endpoint: POST /_sandbox/faults, POST /_sandbox/faults/clear.

Each fault has an endpoint, a kind, an optional count of requests it applies to (`times`,
default: until cleared) and the kind's own parameters. Endpoints are the handlers' names:
"fetch", "list_by_condition", "image_seed", "image" (new-api's /mj/image proxy), "submit"
(imagine, describe, blend, ...), "submit_action", "submit_modal",
"attachment" (the CDN's pictures, quadrants and thumbnails), "video" (every video route), or
"*" for all of them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

KINDS = {
    # Any endpoint:
    "latency",  # {seconds=1}: answer normally, but late
    "drip",  # {seconds=0.5}: the normal answer one byte at a time, `seconds` apart (200 bytes)
    "truncated",  # the normal answer cut in half, with the full Content-Length promised
    "status",  # {status=500, body?, content_type?}: e.g. 500 or 502
    "rate_limit",  # {retry_after=1}: 429 with Retry-After and an empty body (trueai)
    "overload",  # new-api's 503 system_cpu_overloaded JSON
    "garbage",  # 200 application/json that is not JSON
    "reset",  # the connection is reset before any answer
    "html",  # 200 text/html (a CDN challenge page or an SPA)
    "redirect",  # {location=http://169.254.169.254/}: a 302 elsewhere
    # The submit routes (submit, submit_action, submit_modal):
    "code",  # {code=23, description?, properties?}: HTTP 200 with the protocol's code: 23
    # queue full, 24 banned prompt, 9 or 4 any error; 21 or 22 accept (the task is made)
    # and answer with that code
    "accepted_hang",  # {seconds}: the submit is accepted (the task made), answered late
    # list_by_condition:
    "duplicates",  # every row twice, one copy with an older state (E15)
    "shuffle",  # rows in reverse order
    # Files (image, attachment, video); "image/png" below is "video/mp4" on video:
    # {status=404}: image: new-api's passthrough {"error": "This content is no longer
    # available."}; attachment, video: the same sentence as text/plain, as Discord's CDN says it
    "expired",
    "oversized",  # {mb=60}: megabytes of PNG-typed bytes, chunked with no Content-Length
    "oversized_header",  # {mb=60}: Content-Length declares mb megabytes; 64 bytes, then close
    "svg",  # 200 image/png whose body is an SVG document with onload= and <script>
    "bomb",  # a ~100 KB well-formed PNG declaring 10000x10000 grayscale pixels
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
