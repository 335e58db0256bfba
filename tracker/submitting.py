"""The database side of submitting: one outcome per click (the idempotency key), a rate per
user, and the task a submit started tracked at once for the same user, linked to its parent.

The sending itself is gateway.py's (`submit_action`, `submit_modal`, `imagine`); this module
never speaks to a gateway.

A click's key: a button is `action:<row>:<customId>:<n>`, where n counts that button's earlier
submits, so two tabs showing the same button send one submit, and doing it again is a new,
deliberate click (the page then shows n+1). A modal's input is `modal:<row>:<n>` likewise. An
imagine form carries a fresh nonce; the same prompt and images sent again within
DUPLICATE_WINDOW count as the same click too (two tabs, a restored form).
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import ownership, ratelimit
from .models import Gateway, Profile, Submission, TrackedTask
from .stored_text import Stored

DUPLICATE_WINDOW = timedelta(seconds=60)
State = Submission.State
TOO_FAST = Stored.gettext(
    "That is more submits in a minute than mjdash sends for one account. Wait a moment."
)
TAKEN = Stored.gettext(
    "The gateway started task %(task_id)s, but another account already tracks that ID."
)


def fingerprint(*parts, images: list[str] = ()) -> str:
    """What makes two imagines the same job: their words, and their pictures by hash (never
    a copy of megabytes of base64)."""
    pictures = [hashlib.sha256(image.encode()).hexdigest() for image in images]
    text = json.dumps([*parts, pictures], ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def within_rate(user) -> bool:
    """At most MJDASH_SUBMIT_RATE_PER_MINUTE submits a minute for one account."""
    return ratelimit.hit(f"submits:{user.pk}", 60)[0] <= settings.MJDASH_SUBMIT_RATE_PER_MINUTE


def begin(user, key: str, kind: str, **fields) -> tuple[Submission, bool]:
    """Take the click's key: (a new submission, True) for the first request that carries it;
    (the earlier one, False) for a double click, a resubmitted form or a retried request. An
    imagine's fingerprint is checked and taken under a lock on the user's profile row (an
    immediate transaction on SQLite), so two tabs at the same moment cannot both send it."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    try:
        with transaction.atomic():
            if fields.get("fingerprint"):
                Profile.objects.get_or_create(user=user)
                Profile.objects.select_for_update().get(user=user)
                earlier = _same_imagine(user, fields["fingerprint"])
                if earlier is not None:
                    return earlier, False
            return Submission.objects.create(user=user, key=digest, kind=kind, **fields), True
    except IntegrityError:
        return Submission.objects.get(user=user, key=digest), False


def _same_imagine(user, fingerprint: str) -> Submission | None:
    recent = timezone.now() - DUPLICATE_WINDOW
    return (
        Submission.objects.filter(user=user, fingerprint=fingerprint, created_at__gte=recent)
        .exclude(state__in=[State.REFUSED, State.NOT_SENT])
        .order_by("-created_at")
        .first()
    )


def settle(submission: Submission, state: str, message: str = "", task_id: str = "") -> None:
    """Keep what happened. A refusal or a request that never left frees the key: nothing
    was spent, so the same click may be tried again."""
    submission.state, submission.message, submission.task_id = state, message[:500], task_id
    if state in (State.REFUSED, State.NOT_SENT):
        Submission.objects.filter(pk=submission.pk).delete()
        return
    submission.save(update_fields=["state", "message", "task_id"])


def track_started(user, gateway: Gateway, task_id: str, parent: TrackedTask | None) -> bool:
    """The task a submit started, tracked for the user who submitted it, linked to the task
    it came from. On the shared gateway it is theirs: they made it. False when another
    account already owns that ID there (then nothing is stored for this user)."""
    if task_id not in ownership.claim(user, gateway, [task_id]):
        return False
    TrackedTask.objects.get_or_create(
        user=user,
        task_id=task_id,
        defaults={
            "gateway": gateway,
            "parent_task_id": parent.task_id if parent else "",
            "added_at": timezone.now(),
        },
    )
    return True
