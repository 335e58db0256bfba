"""The buttons a gateway offers on a finished task (`buttons`, each with a `customId`), made
readable and ready to submit: a label a person can read even when the gateway sent only an
emoji, which image of a grid it is about, and the idempotency key of its next click."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db.models import Count
from django.utils.translation import gettext

from .models import Submission, TrackedTask

NUMBERED = re.compile(r"::(upsample|variation)::([1-4])::")


@dataclass(frozen=True)
class Action:
    custom_id: str
    label: str  # readable, in the reader's language
    emoji: str
    key: str  # the idempotency key its form carries now
    quadrant: int | None  # 1-4 for U1-U4 and V1-V4
    done_before: int  # how many times it was submitted already


def label_of(custom_id: str, label: str, emoji: str) -> str:
    """What to call a button: the gateway's own label when it has one, else words for its
    customId (pan, reroll, zoom ... are often an emoji alone)."""
    numbered = NUMBERED.search(custom_id)
    if numbered:
        return ("U" if numbered.group(1) == "upsample" else "V") + numbered.group(2)
    if label.strip():
        return label.strip()[:40]
    for needle, words in _WORDS:
        if needle in custom_id:
            return words()
    return emoji.strip()[:8] or gettext("Action")


_WORDS = (
    ("::reroll::", lambda: gettext("Reroll")),
    ("::high_variation::", lambda: gettext("Vary (Strong)")),
    ("::low_variation::", lambda: gettext("Vary (Subtle)")),
    ("upsample_v6_2x_creative", lambda: gettext("Upscale (Creative)")),
    ("upsample_v6_2x_subtle", lambda: gettext("Upscale (Subtle)")),
    ("::pan_left", lambda: gettext("Pan left")),
    ("::pan_right", lambda: gettext("Pan right")),
    ("::pan_up", lambda: gettext("Pan up")),
    ("::pan_down", lambda: gettext("Pan down")),
    ("MJ::CustomZoom::", lambda: gettext("Custom Zoom")),
    ("MJ::Outpaint::50", lambda: gettext("Zoom Out 2x")),
    ("MJ::Outpaint::75", lambda: gettext("Zoom Out 1.5x")),
    ("MJ::Outpaint::", lambda: gettext("Zoom Out")),
    ("MJ::Inpaint::", lambda: gettext("Vary (Region)")),
)


def action_key(task: TrackedTask, custom_id: str, done: int) -> str:
    """A button's idempotency key while it has been submitted `done` times: two tabs showing
    it send one submit; doing it again is a new click (the page then shows done + 1)."""
    return f"action:{task.pk}:{custom_id}:{done}"


def modal_key(task: TrackedTask) -> str:
    """The key of the form for a MODAL task's input, likewise."""
    done = Submission.objects.filter(user_id=task.user_id, parent=task, kind="modal")
    return f"modal:{task.pk}:{done.count()}"


def offered(task: TrackedTask) -> list[Action]:
    """Every button the gateway offered on this task, in its order; none it did not offer.
    One query for how often each was used."""
    buttons = [b for b in task.buttons or [] if isinstance(b, dict) and b.get("customId")]
    if not buttons or not task.is_done:
        return []
    used = dict(
        Submission.objects.filter(user_id=task.user_id, parent=task, kind="action")
        .values_list("custom_id")
        .annotate(n=Count("id"))
    )
    actions = []
    for button in buttons:
        custom_id = str(button["customId"])[:200]
        numbered = NUMBERED.search(custom_id)
        done = used.get(custom_id, 0)
        actions.append(
            Action(
                custom_id=custom_id,
                label=label_of(
                    custom_id, str(button.get("label") or ""), str(button.get("emoji") or "")
                ),
                emoji=str(button.get("emoji") or "")[:8],
                key=action_key(task, custom_id, done),
                quadrant=int(numbered.group(2)) if numbered else None,
                done_before=done,
            )
        )
    return actions
