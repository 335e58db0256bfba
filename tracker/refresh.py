"""The one refresh path: ask the upstream about unfinished tasks and store what it says.

The poll view, the paste flow, the re-check button and (later) the worker all come here. A
connection is asked at most once per MJDASH_REFRESH_SECONDS, for everyone who uses it: the
request whose conditional UPDATE claims the connection makes one batched list-by-condition
call (chunked), every other request just renders what is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from . import breaker
from .models import TrackedTask, UpstreamConnection
from .upstream import UpstreamError, UpstreamTask, client_for

log = logging.getLogger(__name__)

MERGED_FIELDS = [
    "status", "progress", "action", "prompt", "prompt_en", "description", "state",
    "fail_reason", "image_url", "image_urls", "video_url", "buttons", "properties",
    "submitted_at", "started_at", "finished_at", "raw", "missing_upstream",
    "progress_changed_at", "last_checked_at", "last_error",
]  # fmt: skip


def claim(connection_id: int) -> bool:
    """Atomically take the right to refresh this connection for the next interval, across
    threads and processes: a cache lock when Redis is configured, else a conditional UPDATE
    that only one request can win."""
    if settings.REDIS_URL:
        key = f"mjdash:refresh-claim:{connection_id}"
        return cache.add(key, 1, timeout=max(1, settings.MJDASH_REFRESH_SECONDS))
    now = timezone.now()
    return bool(
        UpstreamConnection.objects.filter(pk=connection_id)
        .filter(Q(refresh_due_at__isnull=True) | Q(refresh_due_at__lte=now))
        .update(refresh_due_at=now + timedelta(seconds=settings.MJDASH_REFRESH_SECONDS))
    )


def if_due(connection_ids: Iterable[int]) -> int:
    """Refresh each connection whose interval has passed and that we manage to claim.
    Returns how many connections this call refreshed."""
    refreshed = 0
    for connection_id in connection_ids:
        if claim(connection_id):
            connection = UpstreamConnection.objects.get(pk=connection_id)
            refresh_connection(connection)
            refreshed += 1
    return refreshed


def unfinished_ids(connection: UpstreamConnection) -> list[str]:
    """Every unfinished id tracked on this connection, by anyone, each once."""
    return list(
        TrackedTask.objects.filter(connection=connection)
        .unfinished()
        .order_by()
        .values_list("task_id", flat=True)
        .distinct()
    )


def refresh_connection(connection: UpstreamConnection, ids: list[str] | None = None) -> bool:
    """Ask about `ids` (default: all unfinished) in chunks and merge the answers.
    Returns False when the upstream could not be asked; the error is stored, not raised."""
    ids = unfinished_ids(connection) if ids is None else list(dict.fromkeys(ids))
    if not ids:
        return True
    size = max(1, settings.MJDASH_LIST_CHUNK)
    done = 0
    try:
        breaker.check(connection)
        with client_for(connection) as client:
            for done in range(0, len(ids), size):
                chunk = ids[done : done + size]
                merge(connection, chunk, client.list_by_condition(chunk))
    except UpstreamError as exc:
        record_error(connection, ids[done:], exc)
        return False
    breaker.record_success(connection)
    return True


def recheck(task: TrackedTask) -> None:
    """One task, asked now with a single fetch (the re-check button)."""
    try:
        breaker.check(task.connection)
        with client_for(task.connection) as client:
            found = client.fetch(task.task_id)
    except UpstreamError as exc:
        record_error(task.connection, [task.task_id], exc)
        return
    breaker.record_success(task.connection)
    merge(task.connection, [task.task_id], [found] if found else [])


def merge(connection: UpstreamConnection, asked: list[str], found: list[UpstreamTask]) -> None:
    """Store what the upstream said about `asked`, for every user tracking those ids.
    An asked id that did not come back is not known upstream: it stops being polled, and
    its last known state is kept."""
    by_id = {task.id: task for task in found}
    now = timezone.now()
    rows = list(TrackedTask.objects.filter(connection=connection, task_id__in=asked))
    for row in rows:
        task = by_id.get(row.task_id)
        if task is None:
            row.missing_upstream = True
        else:
            apply(row, task)
        row.last_checked_at = now
        row.last_error = ""
    TrackedTask.objects.bulk_update(rows, MERGED_FIELDS, batch_size=200)


def apply(row: TrackedTask, task: UpstreamTask) -> None:
    if row.progress_changed_at is None or (row.status, row.progress) != (
        task.status,
        task.progress,
    ):
        row.progress_changed_at = timezone.now()
    row.status = task.status
    row.progress = task.progress
    row.action = task.action
    row.prompt = task.prompt
    row.prompt_en = task.prompt_en
    row.description = task.description
    row.state = task.state
    row.fail_reason = task.fail_reason
    row.image_url = task.image_url
    row.image_urls = list(task.image_urls)
    row.video_url = task.video_url
    row.buttons = [button.as_dict() for button in task.buttons]
    row.properties = task.properties
    row.submitted_at = task.submitted_at
    row.started_at = task.started_at
    row.finished_at = task.finished_at
    row.raw = task.raw
    row.missing_upstream = False


def record_error(connection: UpstreamConnection, ids: list[str], exc: UpstreamError) -> None:
    """Keep the last known state; note what went wrong, on the rows and the connection."""
    log.warning("upstream %s: %s", connection.base_url, exc.message)
    TrackedTask.objects.filter(connection=connection, task_id__in=ids).update(
        last_error=exc.message[:500], last_checked_at=timezone.now()
    )
    if not connection.circuit_open:  # the breaker's own refusal is not a new failure
        breaker.record_failure(connection, exc)
