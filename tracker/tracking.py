"""The paste flow: pasted text → tracked rows, looked up through the `ask` it is given."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from . import ownership
from .ids import parse
from .models import Gateway, TrackedTask, gateway_for
from .stored_text import Stored

Ask = Callable[[Gateway, list[str]], bool]  # gateway.refresh_gateway
NOT_ASKED = Stored.gettext(
    "The gateway could not be asked, so the rest were not looked up yet."
).english()


@dataclass
class TrackResult:
    added: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    more_rejected: int = 0
    truncated: bool = False
    gateway_ok: bool = True
    throttled: list[str] = field(default_factory=list)  # new IDs not looked up: see `refusal`
    refusal: str = ""  # in English, like a stored message: pages translate it

    @property
    def nothing_found(self) -> bool:
        return not (self.added or self.already or self.rejected or self.throttled)


def track(user, text: str, ask: Ask) -> TrackResult:
    """Parse pasted text, store the IDs this user does not track yet, and `ask` the gateway
    about the new ones at once (batched), so they show real state straight away."""
    parsed = parse(text)
    result = TrackResult(
        duplicates=parsed.duplicates,
        rejected=parsed.rejected,
        more_rejected=parsed.more_rejected,
        truncated=parsed.truncated,
    )
    if not parsed.ids:
        return result
    existing = set(
        TrackedTask.objects.filter(user=user, task_id__in=parsed.ids).values_list(
            "task_id", flat=True
        )
    )
    result.already = [i for i in parsed.ids if i in existing]
    new = [i for i in parsed.ids if i not in existing]
    if not new:
        return result
    gateway = gateway_for(user)
    if not ownership.may_use(user, gateway):
        result.throttled = new
        result.refusal = ownership.STAFF_ONLY
        return result
    if gateway.shared:
        _track_on_shared(user, gateway, new, result, ask)
    else:
        _store(user, gateway, new)
        result.added = new
        result.gateway_ok = ask(gateway, new)
    return result


def _store(user, gateway: Gateway, ids: list[str], **fields) -> None:
    now = timezone.now()  # one paste shares a timestamp, so the list keeps its order
    TrackedTask.objects.bulk_create(
        [TrackedTask(user=user, gateway=gateway, task_id=i, added_at=now, **fields) for i in ids],
        ignore_conflicts=True,  # a second tab pasting the same IDs at the same moment
    )


def _track_on_shared(user, gateway: Gateway, new: list[str], result: TrackResult, ask: Ask) -> None:
    """Look the new IDs up in batches that the user's guessing budget can pay for. A batch
    may hold as many unknown IDs as the budget grants (reserved before asking, so two tabs
    cannot spend it twice), plus as many as this paste has proven real, so pastes of real
    IDs grow to full batches at once while guesses stop at the budget. IDs owned by another
    account are answered "not found" without a gateway call, and cost the same as an unknown
    ID, so the two cannot be told apart. IDs this user already owns (tracked before, then
    untracked) are looked up first, at no cost, and prove nothing."""
    owners = ownership.owner_filter(gateway, new)
    again = [i for i in new if owners.get(i) == user.pk]  # tracked before, then untracked
    if again:
        _store(user, gateway, again)
        result.added += again
        result.gateway_ok = ask(gateway, again)
    new = [i for i in new if owners.get(i) != user.pk]
    proven, start = 0, 0
    while start < len(new):
        reserved = ownership.reserve_guesses(user, settings.MJDASH_LIST_CHUNK)
        size = min(settings.MJDASH_LIST_CHUNK, reserved + proven)
        if size <= 0:
            break
        batch = new[start : start + size]
        start += size
        mine = ownership.claim(user, gateway, batch)
        asked = [i for i in batch if i in mine]
        _store(  # someone else's: "not found", as if just asked
            user,
            gateway,
            [i for i in batch if i not in mine],
            missing_at_gateway=True,
            last_checked_at=timezone.now(),
        )
        _store(user, gateway, asked)
        ok = not asked or ask(gateway, asked)
        # Every ID the gateway has not vouched for costs the budget, answered or not: a
        # failing gateway must not make guessing free.
        confirmed = ownership.count_confirmed(user, gateway, asked)
        misses = len(batch) - confirmed
        ownership.settle_guesses(user, reserved, misses)
        result.added += batch
        proven += confirmed
        if not ok:
            result.gateway_ok = False
            break  # the rest waits in the box until the gateway answers again
    result.throttled = new[start:]
    if result.throttled and not result.gateway_ok:
        result.refusal = NOT_ASKED
    elif result.throttled:
        result.refusal = ownership.throttled_message(user)
