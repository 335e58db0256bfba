"""The forgiving task-ID parser: whatever a person pasted in, task IDs out.

It takes IDs one per line or separated by anything, JSON from a submit response (`result`,
`id`, `ids`, or arrays of them), and URLs that hold `/mj/task/<id>/...`, `/mj/image/<id>` or
our own `/tasks/<id>/`. Pure: no database, no network.

Whatever is pasted (up to the form's 200,000 characters), parsing takes time linear in its
length, never recurses as deep as the input nests, and reports a bounded number of rejects.
Only the ASCII digits 0-9 make an ID: `\\d` and `str.isdigit()` would also take Arabic-Indic,
fullwidth and other Unicode digits, so neither decides what an ID is here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.utils.translation import gettext, ngettext

# Gateways mint IDs as a millisecond timestamp plus random digits (16 digits today).
ID_PATTERN = re.compile(r"[0-9]{10,32}")  # used with fullmatch; never \d (Unicode digits)
ID_KEYS = ("result", "id", "ids", "taskId", "task_id", "taskIds", "task_ids", "results")
URL_ID = re.compile(r"/(?:mj/task|mj/image|tasks)/([^/?#\s\"'<>]+)")
# Whitespace (Unicode-aware on purpose: a no-break or ideographic space separates too) and the
# ASCII and fullwidth list punctuation a person or an IME puts between IDs.
SEPARATORS = re.compile(r"[\s,;|，；、｜]+")
STRIP = "\"'`()[]{}<>.:"
MAX_IDS = 1000
MAX_REJECTS = 100  # distinct rejects reported; the rest are only counted (`more_rejected`)
MAX_JSON_DEPTH = 100  # deeper JSON is read as plain text, never handed to json.loads
SHOWN_CHARS = 40

_BARE_KEY = re.compile(r"[\"']?[A-Za-z_]+[\"']?[:=]")
_ASCII_DIGIT_RUN = re.compile(r"[0-9]{10,}")
_JSON_SPECIAL = re.compile(r'[\[\]{}"\\]')
# An API key starts a token or follows punctuation (`key=sk-…`, `"token":"sk-…"`), but the
# `sk-` in `task-123` is no key.
_API_KEY = re.compile(r"(?<![a-z0-9])sk-", re.IGNORECASE)


@dataclass
class Parsed:
    ids: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    # At most MAX_REJECTS distinct (token, reason) pairs, tokens shortened and API keys masked.
    rejected: list[tuple[str, str]] = field(default_factory=list)
    truncated: bool = False
    more_rejected: int = 0  # distinct rejects beyond the first MAX_REJECTS, not listed


class _Collector:
    """Builds a Parsed in one pass: every membership test is a set lookup, so a paste of tens
    of thousands of tokens costs no more per token than a paste of ten."""

    def __init__(self) -> None:
        self.parsed = Parsed()
        self.seen_ids: set[str] = set()
        self.seen_duplicates: set[str] = set()
        self.seen_rejects: set[tuple[str, str]] = set()
        self.rejected_tokens: set[str] = set()  # as pasted: a repeat costs one lookup

    def take(self, candidate: str) -> None:
        candidate = candidate.strip().strip(STRIP)
        if not candidate:
            return
        parsed = self.parsed
        if ID_PATTERN.fullmatch(candidate):
            if candidate in self.seen_ids:
                if candidate not in self.seen_duplicates:
                    self.seen_duplicates.add(candidate)
                    parsed.duplicates.append(candidate)
            elif len(parsed.ids) >= MAX_IDS:
                parsed.truncated = True
            else:
                self.seen_ids.add(candidate)
                parsed.ids.append(candidate)
            return
        if candidate in self.rejected_tokens:
            return
        self.rejected_tokens.add(candidate)
        shown = _shown(candidate)
        reject = (shown, _reason(candidate, shown))
        if reject in self.seen_rejects:
            return
        self.seen_rejects.add(reject)
        if len(parsed.rejected) < MAX_REJECTS:
            parsed.rejected.append(reject)
        else:
            parsed.more_rejected += 1


def _shown(token: str) -> str:
    """The token as the page may show it: an API key masked, a long token cut short."""
    key = _API_KEY.search(token)
    if key:
        token = token[: key.start()] + "sk-…"
    return token if len(token) <= SHOWN_CHARS else token[: SHOWN_CHARS - 3] + "…"


def _other_digits(token: str) -> bool:
    """Whether the token holds digits other than ASCII 0-9 (Arabic-Indic, fullwidth, …)."""
    return not token.isascii() and any(c.isdigit() for c in token if not c.isascii())


def rejection_reason(token: str) -> str:
    """Why a token is not a task ID, or "" when it is one."""
    if ID_PATTERN.fullmatch(token):
        return ""
    return _reason(token, _shown(token))


def _reason(token: str, shown: str) -> str:
    """In the active language: the reasons are shown at once, never stored."""
    count = len(token)
    if token.isascii() and token.isdigit() and count < 10:
        return ngettext(
            "%(count)d digit is too short for a task ID",
            "%(count)d digits is too short for a task ID",
            count,
        ) % {"count": count}
    if token.isascii() and token.isdigit():
        return gettext("%(count)d digits is too long for a task ID") % {"count": count}
    if _API_KEY.search(token):
        return gettext("this looks like an API key, not a task ID (it was not stored)")
    if token.startswith(("http://", "https://")):
        return gettext("this link holds no /mj/task/<id> or /mj/image/<id>")
    if _other_digits(token):
        return gettext(
            "use the digits 0-9 only: this has other digits (such as Arabic-Indic or fullwidth)"
        )
    if _ASCII_DIGIT_RUN.search(token):
        return gettext("“%(token)s” has other characters around the digits") % {"token": shown}
    return gettext("task IDs are 10 to 32 digits")


def parse(text: str) -> Parsed:
    """IDs in the order first seen, each once; duplicates and rejects reported once each."""
    collector = _Collector()
    for candidate in _candidates(text):
        collector.take(candidate)
    return collector.parsed


def _candidates(text: str) -> Iterator[str]:
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


def _from_text(text: str) -> Iterator[str]:
    for token in SEPARATORS.split(text):
        if not token:
            continue
        urls = URL_ID.findall(token)
        if urls:
            yield from urls
        elif _BARE_KEY.fullmatch(token):
            continue  # a bare key such as `"result":` in JSON-ish text
        else:
            yield token


class _Urls(str):
    """A string value of a non-task object: only the IDs in its links count."""


def _from_json(value) -> Iterator[str]:
    """IDs from the keys a gateway uses; plain strings and numbers in lists count too.

    Walks the value with its own stack, depth first and in order, so no nesting depth can
    exhaust Python's recursion limit."""
    stack: list[Iterator] = [iter((value,))]
    while stack:
        item = next(stack[-1], _DONE)
        if item is _DONE:
            stack.pop()
        elif isinstance(item, dict):
            keys = [key for key in ID_KEYS if key in item]
            if keys:
                # A task or submit object: its other fields only repeat its own id.
                stack.append(iter([item[key] for key in keys]))
            else:
                stack.append(_inner_values(item))
        elif isinstance(item, list):
            stack.append(iter(item))
        elif isinstance(item, _Urls):
            yield from URL_ID.findall(item)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, (int, str)):
            yield from _from_text(str(item))


_DONE = object()


def _inner_values(obj: dict) -> Iterator:
    for inner in obj.values():
        if isinstance(inner, (dict, list)):
            yield inner
        elif isinstance(inner, str) and URL_ID.search(inner):
            yield _Urls(inner)


def _too_deep(text: str) -> bool:
    """Whether JSON text nests deeper than MAX_JSON_DEPTH (json.loads recurses per level)."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return False
    depth = 0
    in_string = False
    escaped_at = -1
    for match in _JSON_SPECIAL.finditer(text):
        char, at = match.group(), match.start()
        if at == escaped_at:
            continue
        if in_string:
            if char == "\\":
                escaped_at = at + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _json_or_none(text: str):
    if not text or text[0] not in "[{" or _too_deep(text):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None
