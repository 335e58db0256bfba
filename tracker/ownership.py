"""Who may ask the gateway about which task, on a shared gateway.

Everyone on the site default shares one gateway token, so the gateway would hand any of them
any task made with it. mjdash therefore decides: a task on a shared gateway belongs to the
first account that tracks it (TaskOwner). Another account's paste of that ID gets the same
neutral "not found" as an ID that does not exist, and no gateway call is made for it. On a
personal gateway (a user's own token) the gateway itself decides, and none of this applies.

Guessing IDs on the shared gateway is throttled per account: after MJDASH_GUESS_LIMIT IDs
that turned out unknown (or someone else's) within MJDASH_GUESS_WINDOW_MINUTES, further new
IDs are not looked up until the window ends. Real IDs cost nothing, so bulk pastes of them
are not slowed.
"""

from __future__ import annotations

import math
from datetime import timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from .models import Profile, TaskOwner, TrackedTask, UpstreamConnection


def may_use(user, connection: UpstreamConnection) -> bool:
    """A site can keep its shared default for staff only (MJDASH_SHARED_DEFAULT_FOR_ALL)."""
    return not connection.shared or settings.MJDASH_SHARED_DEFAULT_FOR_ALL or user.is_staff


def usable_by(user, rows):
    """`rows` less those on a shared gateway this user may no longer use."""
    if settings.MJDASH_SHARED_DEFAULT_FOR_ALL or user.is_staff:
        return rows
    return rows.exclude(connection__shared=True)


def claim(user, connection: UpstreamConnection, ids: list[str]) -> set[str]:
    """Of `ids`, the ones this user may ask the gateway about: all of them on a personal
    gateway; on a shared one, those nobody else owns (claimed now for this user, first come
    first served, so two accounts racing for one ID cannot both win)."""
    if not connection.shared:
        return set(ids)
    TaskOwner.objects.bulk_create(
        [TaskOwner(connection=connection, task_id=i, user=user) for i in ids],
        ignore_conflicts=True,
    )
    return set(
        TaskOwner.objects.filter(connection=connection, task_id__in=ids, user=user).values_list(
            "task_id", flat=True
        )
    )


def count_unknown(user, connection: UpstreamConnection, ids: list[str]) -> int:
    """How many of `ids` this user tracks that the gateway has never known."""
    return TrackedTask.objects.filter(
        user=user, connection=connection, task_id__in=ids, missing_upstream=True, raw={}
    ).count()


def release_unknown(connection: UpstreamConnection, ids: list[str]) -> None:
    """Give back the claims on IDs the gateway did not know: an ID that does not exist yet
    must not be reserved (IDs are predictable, and a squatter would get the real task once
    it is made)."""
    if connection.shared and ids:
        TaskOwner.objects.filter(connection=connection, task_id__in=ids).delete()


def owns(task: TrackedTask) -> bool:
    """May the gateway be asked about this row on its owner's behalf? Never for a row on a
    shared gateway that belongs to someone else or that the gateway never knew."""
    if not task.connection.shared:
        return True
    return TaskOwner.objects.filter(
        connection=task.connection, task_id=task.task_id, user=task.user_id
    ).exists()


def owner_filter(connection: UpstreamConnection, ids: list[str]) -> dict[str, int]:
    """task_id → the owning user's id, for the rows a refresh may fill in. Empty for a
    personal gateway (every row may be filled)."""
    if not connection.shared:
        return {}
    return dict(
        TaskOwner.objects.filter(connection=connection, task_id__in=ids).values_list(
            "task_id", "user_id"
        )
    )


# --- guessing budget ---------------------------------------------------------------------


def _window() -> timedelta:
    return timedelta(minutes=settings.MJDASH_GUESS_WINDOW_MINUTES)


def _profile(user) -> Profile:
    profile, _ = Profile.objects.get_or_create(user=user)
    return profile


def guesses_left(user) -> int:
    profile = _profile(user)
    started = profile.guess_window_started_at
    if started is None or timezone.now() - started > _window():
        return settings.MJDASH_GUESS_LIMIT
    return max(0, settings.MJDASH_GUESS_LIMIT - profile.guess_misses)


def spend_guesses(user, misses: int) -> None:
    """Count `misses` unknown IDs against this user's window (a new window if it ended)."""
    if misses <= 0:
        return
    profile = _profile(user)
    now = timezone.now()
    rows = Profile.objects.filter(pk=profile.pk)
    started = profile.guess_window_started_at
    if started is None or now - started > _window():
        rows.update(guess_misses=misses, guess_window_started_at=now)
    else:
        rows.update(guess_misses=F("guess_misses") + misses)


def minutes_until_guessing_again(user) -> int:
    started = _profile(user).guess_window_started_at or timezone.now()
    left = (started + _window() - timezone.now()).total_seconds()
    return max(1, math.ceil(left / 60))


def throttled_message(user) -> str:
    minutes = minutes_until_guessing_again(user)
    return (
        "Too many task IDs that the gateway does not know. To protect other people's tasks, "
        f"mjdash will not look up more new IDs for you for {minutes} minute"
        f"{'s' if minutes != 1 else ''}. The tasks you already track are not affected."
    )
