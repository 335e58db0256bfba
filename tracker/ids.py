"""The forgiving task-ID parser: whatever a person pasted in, task IDs out.

It takes IDs one per line or separated by anything, JSON from a submit response (`result`,
`id`, `ids`, or arrays of them), and URLs that hold `/mj/task/<id>/...`, `/mj/image/<id>` or
our own `/tasks/<id>/`. Pure: no database, no network.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

# Gateways mint IDs as a millisecond timestamp plus random digits (16 digits today).
ID_PATTERN = re.compile(r"^\d{10,32}$")
ID_KEYS = ("result", "id", "ids", "taskId", "task_id", "taskIds", "task_ids", "results")
URL_ID = re.compile(r"/(?:mj/task|mj/image|tasks)/([^/?#\s\"'<>]+)")
SEPARATORS = re.compile(r"[\s,;|]+")
STRIP = "\"'`()[]{}<>.:"
MAX_IDS = 1000


@dataclass
class Parsed:
    ids: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    truncated: bool = False

    def _take(self, candidate: str) -> None:
        candidate = candidate.strip().strip(STRIP)
        if not candidate:
            return
        reason = rejection_reason(candidate)
        if reason:
            if (candidate, reason) not in self.rejected:
                self.rejected.append((candidate, reason))
        elif candidate in self.ids:
            if candidate not in self.duplicates:
                self.duplicates.append(candidate)
        elif len(self.ids) >= MAX_IDS:
            self.truncated = True
        else:
            self.ids.append(candidate)


def rejection_reason(token: str) -> str:
    """Why a token is not a task ID, or "" when it is one."""
    if ID_PATTERN.match(token):
        return ""
    shown = token if len(token) <= 40 else token[:37] + "…"
    if token.isdigit():
        return f"{len(token)} digits is too {'short' if len(token) < 10 else 'long'} for a task ID"
    if token.lower().startswith("sk-"):
        return "this looks like an API key, not a task ID (it was not stored)"
    if token.startswith(("http://", "https://")):
        return "this link holds no /mj/task/<id> or /mj/image/<id>"
    if re.search(r"\d{10,}", token):
        return f"“{shown}” has other characters around the digits"
    return "task IDs are 10 to 32 digits"


def parse(text: str) -> Parsed:
    """IDs in the order first seen, each once; duplicates and rejects reported once each."""
    parsed = Parsed()
    for candidate in _candidates(text):
        parsed._take(candidate)
    # An API key must never be echoed back into the page.
    parsed.rejected = [
        ("sk-…" if token.lower().startswith("sk-") else token, reason)
        for token, reason in parsed.rejected
    ]
    return parsed


def _candidates(text: str):
    text = text.strip()
    if not text:
        return
    whole = _json_or_none(text)
    if whole is not None:
        yield from _from_json(whole)
        return
    for line in text.splitlines():
        value = _json_or_none(line.strip().rstrip(","))
        if isinstance(value, (dict, list)):
            yield from _from_json(value)
            continue
        yield from _from_text(line)


def _from_text(text: str):
    for token in SEPARATORS.split(text):
        if not token:
            continue
        urls = URL_ID.findall(token)
        if urls:
            yield from urls
        elif re.fullmatch(r"[\"']?[A-Za-z_]+[\"']?[:=]", token):
            continue  # a bare key such as `"result":` in JSON-ish text
        else:
            yield token


def _from_json(value):
    """IDs from the keys a gateway uses; plain strings and numbers in lists count too."""
    if isinstance(value, dict):
        keys = [key for key in ID_KEYS if key in value]
        for key in keys:
            yield from _from_json(value[key])
        if keys:
            return  # a task or submit object: its other fields only repeat its own id
        for inner in value.values():
            if isinstance(inner, (dict, list)):
                yield from _from_json(inner)
            elif isinstance(inner, str) and URL_ID.search(inner):
                yield from URL_ID.findall(inner)
    elif isinstance(value, list):
        for item in value:
            yield from _from_json(item)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, (int, str)):
        yield from _from_text(str(value))


def _json_or_none(text: str):
    if not text or text[0] not in "[{":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None
