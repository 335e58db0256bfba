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
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from .models import Gateway, Profile, TaskOwner, TrackedTask
from .stored_text import Stored

# Stored as a row's error, in English; pages translate them (stored_text.render).
STAFF_ONLY = Stored.gettext(
    "This site's shared gateway is kept for staff. Add your own gateway and token in Settings "
    "to track tasks."
).english()
THROTTLED = Stored.ngettext(
    "Too many task IDs that the gateway does not know. To protect other people's tasks, mjdash "
    "will not look up more new IDs for you for %(minutes)s minute. The tasks you already track "
    "are not affected.",
    "Too many task IDs that the gateway does not know. To protect other people's tasks, mjdash "
    "will not look up more new IDs for you for %(minutes)s minutes. The tasks you already track "
    "are not affected.",
    "minutes",
)


def may_use(user, gateway: Gateway) -> bool:
    """A site can keep its shared default for staff only (MJDASH_SHARED_DEFAULT_FOR_ALL)."""
    return not gateway.shared or settings.MJDASH_SHARED_DEFAULT_FOR_ALL or user.is_staff


def usable_by(user, rows):
    """`rows` less those on a shared gateway this user may no longer use."""
    if settings.MJDASH_SHARED_DEFAULT_FOR_ALL or user.is_staff:
        return rows
    return rows.exclude(gateway__shared=True)


def claim(user, gateway: Gateway, ids: list[str]) -> set[str]:
    """Of `ids`, the ones this user may ask the gateway about: all of them on a personal
    gateway; on a shared one, those nobody else owns (claimed now for this user, first come
    first served, so two accounts racing for one ID cannot both win). Ownership holds across
    every shared row, so a change of the site's gateway settings frees no task."""
    if not gateway.shared:
        return set(ids)
    owners = owner_filter(gateway, ids)
    TaskOwner.objects.bulk_create(
        [TaskOwner(gateway=gateway, task_id=i, user=user) for i in ids if i not in owners],
        ignore_conflicts=True,
    )
    owners = owner_filter(gateway, ids)
    return {i for i in ids if owners.get(i) == user.pk}


def count_confirmed(user, gateway: Gateway, ids: list[str]) -> int:
    """How many of `ids` the gateway has answered for, for this user."""
    return TrackedTask.objects.filter(
        user=user, gateway=gateway, task_id__in=ids, seen_at_gateway=True
    ).count()


def release_unknown(gateway: Gateway, ids: list[str], user=None) -> None:
    """Give back the claims on IDs the gateway did not know: an ID that does not exist yet
    must not be reserved (IDs are predictable, and a squatter would get the real task once
    it is made)."""
    if gateway.shared and ids:
        claims = TaskOwner.objects.filter(gateway=gateway, task_id__in=ids)
        (claims if user is None else claims.filter(user=user)).delete()


def owns(task: TrackedTask) -> bool:
    """May the gateway be asked about this row on its owner's behalf? Never for a row on a
    shared gateway that belongs to someone else or that the gateway never knew."""
    if not task.gateway.shared:
        return True
    return owner_filter(task.gateway, [task.task_id]).get(task.task_id) == task.user_id


def owner_filter(gateway: Gateway, ids: list[str]) -> dict[str, int]:
    """task_id → the owning user's id, the earliest claim on any shared row winning. Empty
    for a personal gateway (every row may be filled)."""
    if not gateway.shared:
        return {}
    claims = (
        TaskOwner.objects.filter(gateway__shared=True, task_id__in=ids)
        .order_by("-claimed_at", "-pk")
        .values_list("task_id", "user_id")
    )
    return dict(claims)  # later entries overwrite: the earliest claim is what remains


# --- guessing budget ---------------------------------------------------------------------


def _window() -> timedelta:
    return timedelta(minutes=settings.MJDASH_GUESS_WINDOW_MINUTES)


def _profile(user) -> Profile:
    profile, _ = Profile.objects.get_or_create(user=user)
    return profile


def guesses_left(user) -> int:
    profile = _profile(user)
    if _window_ended(profile):
        return settings.MJDASH_GUESS_LIMIT
    return max(0, settings.MJDASH_GUESS_LIMIT - profile.guess_misses)


def _window_ended(profile: Profile) -> bool:
    started = profile.guess_window_started_at
    return started is None or timezone.now() - started > _window()


@transaction.atomic
def reserve_guesses(user, wanted: int) -> int:
    """Take up to `wanted` guesses from this user's budget before asking, under a row lock
    (an immediate transaction on SQLite), so two tabs at once cannot both spend the same
    budget. Returns how many were granted; settle() squares the account afterwards."""
    _profile(user)
    profile = Profile.objects.select_for_update().get(user=user)
    if _window_ended(profile):
        profile.guess_misses, profile.guess_window_started_at = 0, timezone.now()
    granted = max(0, min(wanted, settings.MJDASH_GUESS_LIMIT - profile.guess_misses))
    profile.guess_misses += granted
    profile.save(update_fields=["guess_misses", "guess_window_started_at"])
    return granted


def settle_guesses(user, reserved: int, misses: int) -> None:
    """After asking: `misses` IDs turned out unknown (or someone else's). Give back what was
    reserved but not missed; charge what was missed beyond the reservation."""
    change = misses - reserved
    if change:
        Profile.objects.filter(user=user).update(
            guess_misses=Greatest(F("guess_misses") + change, 0)
        )


def spend_guesses(user, misses: int) -> None:
    """Count `misses` unknown IDs against this user's window (a new window if it ended)."""
    if misses > 0:
        settle_guesses(user, reserve_guesses(user, misses), misses)


def minutes_until_guessing_again(user) -> int:
    started = _profile(user).guess_window_started_at or timezone.now()
    left = (started + _window() - timezone.now()).total_seconds()
    return max(1, math.ceil(left / 60))


def throttled_message(user) -> str:
    return THROTTLED.english(minutes=minutes_until_guessing_again(user))
