"""A task's parent and children among the same user's tracked tasks: the IMAGINE an UPSCALE
came from, and the UPSCALEs and VARIATIONs made from it. Only links the gateway states are
drawn, from three sources (docs/gateway-quirks.md):
- trueai-org's `parentId`, kept on the row as `parent_task_id` (and set by mjdash itself
  when it submits an action);
- novicezk's properties: a follow-up's `referencedMessageId` is its parent's `messageId`;
- a button's customId (`MJ::JOB::upsample::1::<hash>`) carries the message hash of the task
  whose button it is: a follow-up that records the customId it was made with points at the
  task whose `messageHash` (or whose own buttons) carry that hash.
A link that none of these states is not guessed."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.db.models import Q, TextField
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from .models import TrackedTask

HASH = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
CUSTOM_ID_KEYS = ("customId", "custom_id")


@dataclass
class Family:
    parent: TrackedTask | None = None
    children: list[TrackedTask] = field(default_factory=list)


def family(task: TrackedTask) -> Family:
    mine = (
        TrackedTask.objects.filter(user=task.user_id, gateway=task.gateway_id)
        .exclude(pk=task.pk)
        .annotate(
            buttons_text=Cast("buttons", output_field=TextField()),
            **{f"made_with_{key}": KT(f"properties__{key}") for key in CUSTOM_ID_KEYS},
        )
        .defer("raw")
    )
    return Family(parent=_parent(task, mine), children=_children(task, mine))


def _parent(task: TrackedTask, mine) -> TrackedTask | None:
    props = _props(task)
    wanted = Q(task_id=task.parent_task_id) if task.parent_task_id else Q()
    if props.get("referencedMessageId"):
        wanted |= Q(properties__messageId=props["referencedMessageId"])
    made_with = _made_with(props)
    if made_with:  # the parent's own hash, or one in its buttons
        wanted |= Q(properties__messageHash=made_with) | Q(buttons_text__contains=made_with)
    if not wanted:
        return None
    found = list(mine.filter(wanted)[:2])
    return found[0] if len(found) == 1 else None  # two candidates: not known, not shown


def _children(task: TrackedTask, mine) -> list[TrackedTask]:
    props = _props(task)
    wanted = Q(parent_task_id=task.task_id)
    if props.get("messageId"):
        wanted |= Q(properties__referencedMessageId=props["messageId"])
    own = _button_hashes(task) | ({props["messageHash"]} if props.get("messageHash") else set())
    for key in CUSTOM_ID_KEYS:
        for digest in own:
            wanted |= Q(**{f"made_with_{key}__contains": digest})
    return list(mine.filter(wanted).order_by("submitted_at", "added_at", "id")[:50])


def _props(task: TrackedTask) -> dict:
    return task.properties if isinstance(task.properties, dict) else {}


def _made_with(props: dict) -> str:
    """The message hash in the customId this task was submitted with, if it says."""
    for key in CUSTOM_ID_KEYS:
        match = HASH.search(str(props.get(key) or ""))
        if match:
            return match.group(0)
    return ""


def _button_hashes(task: TrackedTask) -> set[str]:
    buttons = task.buttons if isinstance(task.buttons, list) else []
    ids = (str(b.get("customId", "")) for b in buttons if isinstance(b, dict))
    return {m.group(0) for m in map(HASH.search, ids) if m}
