"""Tags: a user's own free-text labels on tasks. Pure rules for what a tag may be, and the
few writes that attach, detach and tidy them, always within one user's rows."""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Count

from .models import Tag, TrackedTask

MAX_PER_TASK = 20
MAX_TEXT = MAX_PER_TASK * (Tag.MAX_LENGTH + 2)  # what 20 tags can take; the rest is ignored
SEPARATORS = re.compile(r"[,，、\n]+")  # commas, the full-width ones, or one per line
SPACES = re.compile(r"\s+")


def parse(text: str) -> list[str]:
    """ "cats, Sunset ,cats" → ["cats", "Sunset"]: trimmed, inner spaces folded, cut to the
    column's size, duplicates (case-insensitively) dropped, at most MAX_PER_TASK."""
    names: dict[str, str] = {}
    for part in SEPARATORS.split((text or "")[:MAX_TEXT]):
        name = SPACES.sub(" ", part).strip().lstrip("#").strip()[: Tag.MAX_LENGTH]
        if name and name.casefold() not in names:
            names[name.casefold()] = name
            if len(names) == MAX_PER_TASK:
                break
    return list(names.values())


def tags_for(user, names: Iterable[str]) -> list[Tag]:
    """The user's tags by these names, made where missing. A name that differs from an
    existing tag only in case is that tag, so "Cats" and "cats" never split a filter."""
    wanted = list(names)
    mine = {tag.name.casefold(): tag for tag in Tag.objects.filter(user=user)}
    found = []
    for name in wanted:
        tag = mine.get(name.casefold())
        if tag is None:
            tag, _ = Tag.objects.get_or_create(user=user, name=name)
            mine[name.casefold()] = tag
        found.append(tag)
    return found


@transaction.atomic
def replace(task: TrackedTask, text: str) -> list[Tag]:
    """Set one task's tags to exactly those named in `text`."""
    tags = tags_for(task.user, parse(text))
    task.tags.set(tags)
    prune(task.user)
    return tags


@transaction.atomic
def add(rows, text: str, user) -> int:
    """Add the tags named in `text` to each of `rows` (the user's own): how many rows."""
    tags = tags_for(user, parse(text))
    chosen = TrackedTask.objects.filter(user=user, pk__in=rows.values("pk"))
    room = list(chosen.annotate(held=Count("tags")).values_list("pk", "held"))
    through = TrackedTask.tags.through
    links = [  # a task already at the cap takes none, one near it only what fits
        through(trackedtask_id=pk, tag_id=tag.pk)
        for pk, held in room
        for tag in tags[: max(MAX_PER_TASK - held, 0)]
    ]
    through.objects.bulk_create(links, ignore_conflicts=True, batch_size=1000)
    return len(room)


def prune(user) -> None:
    """Forget the user's tags no task carries any more, so the filter lists only live ones."""
    Tag.objects.filter(user=user, tasks=None).delete()
