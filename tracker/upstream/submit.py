"""What a gateway's answer to a submit (imagine, action, modal) means: the Midjourney-proxy
protocol's codes, read at the boundary into a `Submitted`, or one of two UpstreamErrors.

The codes: 1 submitted; 21 "already exists" (also "waiting for input", 窗口等待) and 22
"queued", whose result still carries the task ID; 23 "queue full" and 24 "banned prompt";
anything else an error in the gateway's own words. new-api relays 21 and 22 as 1. An HTTP
200 with an error code is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..stored_text import Stored
from .errors import Saying, UpstreamError
from .task import TASK_ID
from .values import _text

ACCEPTED = (1, 21, 22)
QUEUE_FULL = Saying(
    Stored.gettext("The gateway's queue is full; try again in a while (%(said)s)."),
    Stored.gettext("The gateway's queue is full; try again in a while."),
)
BANNED = Saying(
    Stored.gettext("The gateway refused the prompt: it contains a banned word (%(said)s)."),
    Stored.gettext("The gateway refused the prompt: it contains a banned word."),
)
REFUSED = Saying(
    Stored.gettext("The gateway refused this (code %(code)s: %(said)s)."),
    Stored.gettext("The gateway refused this (code %(code)s)."),
)
NO_ID = Stored.gettext("The gateway accepted this but sent no task ID to follow.")
MAYBE = Stored.gettext(
    "The gateway may have accepted this, but its answer did not arrive (%(why)s). Check "
    "before trying again: a new task, if there is one, shows up here once the gateway lists it."
)


@dataclass(frozen=True)
class Submitted:
    task_id: str
    code: int  # 1, 21 or 22
    description: str = ""  # the gateway's own words ("提交成功", "排队中…", "窗口等待")
    properties: dict[str, Any] = field(default_factory=dict)


class SubmitRefused(UpstreamError):
    """The gateway answered, and said no: nothing was submitted. Permanent for this input."""

    def __init__(self, message: str, code: int | None) -> None:
        super().__init__(message, permanent=True)
        self.code = code


class MaybeSubmitted(UpstreamError):
    """The request may have reached the gateway, but no answer came back: it must not be
    sent again blindly. Never retried."""

    def __init__(self, why: str) -> None:
        super().__init__(MAYBE.english(why=why.rstrip(".")))


def read_answer(data: Any) -> Submitted:
    """A submit's JSON answer (of any HTTP status that carries one) → Submitted, or the
    refusal it means."""
    if not isinstance(data, dict):
        raise SubmitRefused(REFUSED.english(code="?"), None)
    code = data.get("code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    description = _text(data.get("description")).strip()[:300]
    properties = data.get("properties") if isinstance(data.get("properties"), dict) else {}
    if code in ACCEPTED:
        task_id = _text(data.get("result")).strip()
        if not TASK_ID.fullmatch(task_id):
            raise SubmitRefused(NO_ID.english(), code)
        return Submitted(task_id, code, description, properties)
    if code == 5:  # new-api's relay failed talking to its upstream, which may have taken it
        raise MaybeSubmitted(description or "code 5")
    if code == 23:
        raise SubmitRefused(QUEUE_FULL.english(description), code)
    if code == 24:
        word = _text(properties.get("bannedWord")).strip()[:100]
        raise SubmitRefused(BANNED.english(word or description), code)
    raise SubmitRefused(REFUSED.english(description, code=code if code is not None else "?"), code)
