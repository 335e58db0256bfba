"""The refresh's database side: the lease that lets one caller at a time ask a gateway for
everyone, which unfinished IDs are due (the cadence), and merging the answers into every row.

The asking itself is gateway.refresh_gateway's; this module never speaks to a gateway.

The cadence has two lanes. A task that is young or moving is asked every
MJDASH_REFRESH_SECONDS; one whose state has not changed for MJDASH_SLOW_AFTER_SECONDS (it sits
in a queue, waits for input, or went stale) is asked every MJDASH_SLOW_REFRESH_SECONDS. While a
gateway's breaker is open it is not asked at all until the cool-off ends.

A refresh costs what changed, not what exists: rows are compared by a digest of what the
gateway said (TrackedTask.state_hash), read as a few plain values, and only rows whose digest
moved are written. When a lane was asked is kept on the gateway, one write for the batch.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from . import ownership
from .models import FINISHED, Gateway, Status, TrackedTask
from .tasks import archive_soon

if TYPE_CHECKING:
    from .upstream import UpstreamTask

# What mjdash derives on each row, besides the fields the gateway describes (UpstreamTask).
DERIVED_FIELDS = ["missing_at_gateway", "seen_at_gateway", "progress_changed_at", "state_hash"]
# What a merge reads of each row: enough to compare and to know what happened, no JSON.
COMPARED = ["pk", "task_id", "user_id", "state_hash", "status", "progress", "missing_at_gateway"]
COMPARED += [
    "seen_at_gateway",
    "progress_changed_at",
    "archived_at",
    "last_error",
    "parent_task_id",
]


# --- the lease ----------------------------------------------------------------------------------


def claim(gateway_id: int) -> str:
    """Take this gateway for one refresh, across threads, processes and machines: a
    conditional UPDATE that only one caller wins, and only once the gateway is due and nobody
    holds it. Returns the holder's token ("" for everyone else). A holder that dies keeps the
    gateway only until its lease (MJDASH_REFRESH_LEASE_SECONDS) runs out."""
    now, holder = timezone.now(), secrets.token_hex(8)
    won = Gateway.objects.filter(free_and_due(now), pk=gateway_id).update(
        refresh_holder=holder,
        refresh_lease_until=now + _seconds(settings.MJDASH_REFRESH_LEASE_SECONDS),
        refresh_due_at=now + _seconds(settings.MJDASH_REFRESH_SECONDS),
    )
    return holder if won else ""


def free_and_due(now) -> Q:
    """A gateway whose interval has passed and that nobody holds (or whose holder's lease ran
    out): the claim's condition, and the worker's list of what to hand out."""
    due = Q(refresh_due_at__isnull=True) | Q(refresh_due_at__lte=now)
    return due & (Q(refresh_lease_until__isnull=True) | Q(refresh_lease_until__lte=now))


def release(gateway_id: int, holder: str, *, asked_slow: bool) -> None:
    """Hand the gateway back: due again after the interval, or once its breaker's cool-off
    ends if that is later. Only the holder can release (a lease taken over stays taken)."""
    now = timezone.now()
    stamps = {"slow_asked_at": now} if asked_slow else {}
    Gateway.objects.filter(pk=gateway_id, refresh_holder=holder).update(
        refresh_holder="",
        refresh_lease_until=None,
        refresh_due_at=Greatest(
            Value(now + _seconds(settings.MJDASH_REFRESH_SECONDS)),
            Coalesce(F("circuit_open_until"), Value(now)),
        ),
        **stamps,
    )


# --- what is due ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    ids: list[str]
    slow_lane: bool  # the slow lane was due, and its IDs are among `ids`


def due(gateway: Gateway) -> Due:
    """The unfinished IDs on this gateway worth asking about now, each once."""
    now = timezone.now()
    rows = TrackedTask.objects.filter(gateway=gateway).unfinished()
    slow_lane = gateway.slow_asked_at is None or (
        gateway.slow_asked_at <= now - _seconds(settings.MJDASH_SLOW_REFRESH_SECONDS) + _SLACK
    )
    if not slow_lane:
        rows = rows.filter(fast_lane(now))
    return Due(_ids(rows), slow_lane)


def fast_lane(now) -> Q:
    """Young or moving: never seen to change yet, or changed within MJDASH_SLOW_AFTER_SECONDS,
    and not waiting for the user's input (MODAL waits for a person, not for the gateway)."""
    recent = now - _seconds(settings.MJDASH_SLOW_AFTER_SECONDS)
    moving = Q(progress_changed_at__isnull=True) | Q(progress_changed_at__gt=recent)
    return moving & ~Q(status=Status.MODAL)


def unfinished_ids(gateway: Gateway) -> list[str]:
    """Every unfinished id tracked on this gateway, by anyone, each once."""
    return _ids(TrackedTask.objects.filter(gateway=gateway).unfinished())


def _ids(rows: QuerySet) -> list[str]:
    """Each task ID among `rows` once (two users may track one ID on a shared token)."""
    return list(rows.order_by().values_list("task_id", flat=True).distinct())


# --- merging the answers ----------------------------------------------------------------------


@dataclass(frozen=True)
class Merged:
    written: int  # rows whose state moved
    finished: list[int]  # rows seen unfinished before and final now (for notices)


def merge(gateway: Gateway, asked: list[str], found: list[UpstreamTask]) -> Merged:
    """Store what the gateway said about `asked`, for every user tracking those ids.
    An asked id that did not come back is not known to the gateway: it stops being polled, and
    its last known state is kept. Only rows whose state moved are written."""
    now, by_id = timezone.now(), {task.id: task for task in found}
    stored = found[0].stored() if found else {}  # the one field list
    names = [*stored, *DERIVED_FIELDS, "last_checked_at", "last_error"]
    rows = list(TrackedTask.objects.filter(gateway=gateway, task_id__in=asked).values(*COMPARED))
    if gateway.shared:  # only the owner's row is ever filled in
        owners = ownership.owner_filter(gateway, asked)
        rows = [row for row in rows if owners.get(row["task_id"]) == row["user_id"]]
    digests = {task_id: digest(task) for task_id, task in by_id.items()}
    changed, gone, unknown, succeeded, finished = [], [], [], [], []
    for row in rows:
        task = by_id.get(row["task_id"])
        if task is None:
            if not row["missing_at_gateway"]:
                gone.append(row["pk"])
            if not row["seen_at_gateway"]:
                unknown.append(row["task_id"])
            continue
        if digests[task.id] == row["state_hash"] and not row["missing_at_gateway"]:
            continue
        changed.append(_updated(row, task, digests[task.id], now))
        was_final = row["status"] in FINISHED and not row["missing_at_gateway"]
        if task.status in FINISHED and not was_final and row["seen_at_gateway"]:
            finished.append(row["pk"])
        if task.status == Status.SUCCESS and row["status"] != Status.SUCCESS:
            succeeded.append(changed[-1])
    _write(changed, names)
    TrackedTask.objects.filter(pk__in=gone).update(missing_at_gateway=True, last_checked_at=now)
    erred = [row["pk"] for row in rows if row["last_error"]]  # answered now: no error left
    TrackedTask.objects.filter(pk__in=erred, last_error__gt="").update(last_error="")
    ownership.release_unknown(gateway, unknown)
    archive_soon(succeeded)
    return Merged(len(changed) + len(gone), finished)


def _write(rows: list[TrackedTask], names: list[str]) -> None:
    """Each changed row's `names`, as one parameterised UPDATE per row sent in a single batch
    (executemany). Django's bulk_update builds a CASE per field per row instead, which takes
    tens of seconds for the thousands of rows a busy gateway changes at once."""
    if not rows:
        return
    fields = [TrackedTask._meta.get_field(name) for name in names]
    database = connections[router.db_for_write(TrackedTask)]
    quote = database.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    sql = f"UPDATE {quote(TrackedTask._meta.db_table)} SET {assignments} WHERE {quote('id')} = %s"
    params = [
        [field.get_db_prep_save(getattr(row, field.attname), database) for field in fields]
        + [row.pk]
        for row in rows
    ]
    with transaction.atomic(using=database.alias), database.cursor() as cursor:
        cursor.executemany(sql, params)


def digest(task: UpstreamTask) -> str:
    """What a person can see of the gateway's answer, as 32 hex digits (the raw JSON alone,
    e.g. a new ?rand=, does not count)."""
    values = {name: value for name, value in task.stored().items() if name != "raw"}
    text = json.dumps(values, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _updated(row: dict, task: UpstreamTask, state_hash: str, now) -> TrackedTask:
    """A row object carrying only what bulk_update writes (plus what archive_soon reads)."""
    moved = (row["status"], row["progress"]) != (task.status, task.progress)
    moved_at = now if moved or not row["progress_changed_at"] else row["progress_changed_at"]
    # The task it came from: the gateway's word where it gives one (trueai's parentId), else
    # the link mjdash made when it submitted the button that started it.
    stored = {**task.stored(), "parent_task_id": task.parent_task_id or row["parent_task_id"]}
    return TrackedTask(
        pk=row["pk"],
        user_id=row["user_id"],
        task_id=row["task_id"],
        **stored,
        missing_at_gateway=False,
        seen_at_gateway=True,
        progress_changed_at=moved_at,
        state_hash=state_hash,
        last_checked_at=now,
        last_error="",
        archived_at=row["archived_at"],
    )


def note(rows: QuerySet, message: str) -> None:
    """Keep the last known state; say what went wrong (or "" for nothing) on `rows`. An error
    says nothing about a task, so strangers' rows for the same ID may carry it too. Rows that
    already say so are not written again."""
    message = message[:500]
    rows.exclude(last_error=message).update(last_error=message, last_checked_at=timezone.now())


def _seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


_SLACK = timedelta(milliseconds=500)  # a loop that wakes a moment early still finds it due
