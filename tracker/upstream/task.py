"""The task as a gateway describes it, parsed at the boundary into a typed object.

`UpstreamTask.from_json` accepts every known shape (docs/gateway-quirks.md: Go zero values
or nulls, absent keys, imageUrls as strings or objects); `clean` makes any gateway JSON safe
to store before that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from .errors import NO_TASK_ID, UpstreamError
from .values import _text

# How far along a status is, for merging duplicate rows (E15): keep the most advanced one.
STATUS_RANK = {"": 0, "NOT_START": 1, "SUBMITTED": 2, "MODAL": 3, "IN_PROGRESS": 3}
FINAL_RANK = 5
PERCENT = re.compile(r"([0-9]{1,3}(?:\.[0-9]{1,3})?)\s*%")
RAND_PARAM = re.compile(r"[?&]rand=\d+$")
TASK_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")


@dataclass(frozen=True)
class Button:
    custom_id: str
    emoji: str
    label: str

    def as_dict(self) -> dict[str, str]:
        return {"customId": self.custom_id, "emoji": self.emoji, "label": self.label}


@dataclass(frozen=True)
class UpstreamTask:
    """A task as the gateway described it. Every field but `id` is stored on the tracked
    row under the same name: this class is the one list of them (see `stored`)."""

    id: str
    status: str = ""
    progress: str = ""
    action: str = ""
    prompt: str = ""
    prompt_en: str = ""
    description: str = ""
    state: str = ""
    fail_reason: str = ""
    image_url: str = ""
    image_urls: tuple[str, ...] = ()
    video_url: str = ""
    buttons: tuple[Button, ...] = ()
    properties: dict[str, Any] = field(default_factory=dict)
    submitted_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    parent_task_id: str = ""  # trueai-org's parentId: the task this one was made from
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> UpstreamTask:
        """Accept every known shape: Go zero values or nulls, absent keys, enum strings,
        imageUrls as strings or {url} objects. Reject only what cannot be a task."""
        if not isinstance(data, dict) or not _text(data.get("id")):
            raise UpstreamError(NO_TASK_ID.english())
        properties = data.get("properties")
        return cls(
            id=_text(data.get("id")),
            status=_text(data.get("status")).upper()[:32],
            progress=_text(data.get("progress"))[:32],
            action=_text(data.get("action")).upper()[:32],
            prompt=_text(data.get("prompt")),
            prompt_en=_text(data.get("promptEn")),
            description=_text(data.get("description")),
            state=_text(data.get("state")),
            fail_reason=_text(data.get("failReason")),
            image_url=_without_rand(_url(data.get("imageUrl"))),
            image_urls=_urls(data.get("imageUrls")),
            video_url=_url(data.get("videoUrl")),
            buttons=_buttons(data.get("buttons")),
            properties=properties if isinstance(properties, dict) else {},
            submitted_at=_millis(data.get("submitTime")),
            started_at=_millis(data.get("startTime")),
            finished_at=_millis(data.get("finishTime")),
            parent_task_id=_task_id(data.get("parentId")),
            raw=data,
        )

    @classmethod
    def stored_fields(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name != "id"]

    def stored(self) -> dict[str, Any]:
        """Field → the value to store: tuples become lists and buttons plain dicts (JSON)."""
        values = {name: getattr(self, name) for name in self.stored_fields()}
        values["image_urls"] = list(self.image_urls)
        values["buttons"] = [button.as_dict() for button in self.buttons]
        return values

    @property
    def rank(self) -> tuple[int, float]:
        match = PERCENT.search(self.progress)
        percent = float(match.group(1)) if match else 0.0
        return STATUS_RANK.get(self.status, FINAL_RANK), percent


def _task_id(value: Any) -> str:
    text = _text(value).strip()
    return text if TASK_ID.fullmatch(text) else ""


def _url(value: Any) -> str:
    text = _text(value).strip()
    fits = len(text) <= 1000  # the column's size: a longer "URL" is noise, not a link
    return text if fits and text.startswith(("http://", "https://")) else ""


def _without_rand(url: str) -> str:
    """new-api appends ?rand=<nanos> to unfinished images on every fetch; it means nothing."""
    return RAND_PARAM.sub("", url)


def _urls(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    found = []
    for item in value:
        url = _url(item.get("url") if isinstance(item, dict) else item)
        if url:
            found.append(url)
    return tuple(found)


def _buttons(value: Any) -> tuple[Button, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(
        Button(_text(b.get("customId")), _text(b.get("emoji")), _text(b.get("label")))
        for b in value
        if isinstance(b, dict)
    )


def _millis(value: Any) -> datetime | None:
    try:
        millis = int(value or 0)
    except (TypeError, ValueError, OverflowError):
        return None
    if millis <= 0:
        return None
    try:
        return datetime.fromtimestamp(millis / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def merge_duplicates(tasks: list[UpstreamTask]) -> list[UpstreamTask]:
    """One task per id, the most advanced state winning (new-api can list an id twice)."""
    best: dict[str, UpstreamTask] = {}
    for task in tasks:
        if task.id not in best or task.rank > best[task.id].rank:
            best[task.id] = task
    return list(best.values())
