"""The refresh's database side: the claim that lets one caller per interval ask a gateway
for everyone, the unfinished IDs to ask about, and merging the answers into every row.

The asking itself is gateway.refresh_gateway's; this module never speaks to a gateway.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from . import ownership
from .models import Gateway, Status, TrackedTask
from .tasks import archive_soon

if TYPE_CHECKING:
    from .upstream import UpstreamTask

# What mjdash derives on each row, besides the fields the gateway describes (UpstreamTask).
DERIVED_FIELDS = ["missing_at_gateway", "seen_at_gateway", "progress_changed_at"]


def claim(gateway_id: int) -> bool:
    """Atomically take the right to refresh this gateway for the next interval, across
    threads, processes and machines: a conditional UPDATE that only one caller can win. (A
    dead caller's claim simply runs out with the interval.)"""
    now = timezone.now()
    return bool(
        Gateway.objects.filter(pk=gateway_id)
        .filter(Q(refresh_due_at__isnull=True) | Q(refresh_due_at__lte=now))
        .update(refresh_due_at=now + timedelta(seconds=settings.MJDASH_REFRESH_SECONDS))
    )


def unfinished_ids(gateway: Gateway) -> list[str]:
    """Every unfinished id tracked on this gateway, by anyone, each once."""
    return list(
        TrackedTask.objects.filter(gateway=gateway)
        .unfinished()
        .order_by()
        .values_list("task_id", flat=True)
        .distinct()
    )


def merge(gateway: Gateway, asked: list[str], found: list[UpstreamTask]) -> None:
    """Store what the gateway said about `asked`, for every user tracking those ids.
    An asked id that did not come back is not known to the gateway: it stops being polled, and
    its last known state is kept."""
    by_id = {task.id: task for task in found}
    names = [*(found[0].stored() if found else {}), *DERIVED_FIELDS]  # the one field list
    # The raw JSON is only ever replaced, never compared: not loading it saves most of the
    # time a refresh spends in the database.
    rows = list(TrackedTask.objects.filter(gateway=gateway, task_id__in=asked).defer("raw"))
    if gateway.shared:  # only the owner's row is ever filled in
        owners = ownership.owner_filter(gateway, asked)
        rows = [row for row in rows if owners.get(row.task_id) == row.user_id]
    changed, unknown, succeeded = [], [], []
    for row in rows:
        before, was_done = _state(row, names), row.is_done
        task = by_id.get(row.task_id)
        if task is None:
            row.missing_at_gateway = True
            if not row.seen_at_gateway:
                unknown.append(row.task_id)
        else:
            apply(row, task)
        if _state(row, names) != before:
            changed.append(row)
        if row.status == Status.SUCCESS and not was_done:
            succeeded.append(row)
    # Most polls change few rows: write those, and stamp the check on all in one UPDATE.
    TrackedTask.objects.bulk_update(changed, names, batch_size=200)
    TrackedTask.objects.filter(pk__in=[row.pk for row in rows]).update(
        last_checked_at=timezone.now(), last_error=""
    )
    ownership.release_unknown(gateway, unknown)
    archive_soon(succeeded)


def _state(row: TrackedTask, names: list[str]) -> tuple:
    """What a person can see change (the raw JSON alone, e.g. a new ?rand=, does not count)."""
    return tuple(getattr(row, name) for name in names if name != "raw")


def apply(row: TrackedTask, task: UpstreamTask) -> None:
    if row.progress_changed_at is None or (row.status, row.progress) != (
        task.status,
        task.progress,
    ):
        row.progress_changed_at = timezone.now()
    for name, value in task.stored().items():
        setattr(row, name, value)
    row.missing_at_gateway, row.seen_at_gateway = False, True


def note(rows: QuerySet, message: str) -> None:
    """Keep the last known state; say what went wrong (or "" for nothing) on `rows`. An error
    says nothing about a task, so strangers' rows for the same ID may carry it too."""
    rows.update(last_error=message[:500], last_checked_at=timezone.now())
