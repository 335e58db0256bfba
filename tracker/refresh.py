"""The one refresh path: ask the upstream about unfinished tasks and store what it says.

The poll view, the paste flow, the re-check button and (later) the worker all come here. A
connection is asked at most once per MJDASH_REFRESH_SECONDS, for everyone who uses it: the
request that claims the connection makes the batched list-by-condition calls (one per chunk
of IDs); every other request just renders what is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from . import breaker, ownership
from .models import TrackedTask, UpstreamConnection
from .upstream import UpstreamError, UpstreamTask, client_for

log = logging.getLogger(__name__)
MAX_PARALLEL = 4  # chunks in flight at once against one gateway

MERGED_FIELDS = [
    "status", "progress", "action", "prompt", "prompt_en", "description", "state",
    "fail_reason", "image_url", "image_urls", "video_url", "buttons", "properties",
    "submitted_at", "started_at", "finished_at", "raw", "missing_upstream",
    "progress_changed_at",
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
    """Ask about `ids` (default: all unfinished) and merge the answers. More IDs than one
    chunk go out as parallel chunks (at most MAX_PARALLEL at once), so a refresh takes about
    one round trip however many tasks run, and the answers are merged together in a fixed
    number of queries. Returns False when the upstream could not be asked; the error is
    stored on the rows it concerns, not raised."""
    ids = unfinished_ids(connection) if ids is None else list(dict.fromkeys(ids))
    if not ids:
        return True
    size = max(1, settings.MJDASH_LIST_CHUNK)
    chunks = [ids[start : start + size] for start in range(0, len(ids), size)]
    try:
        breaker.check(connection)
        ask = partial(_ask, client_for(connection))
    except UpstreamError as exc:
        record_error(connection, ids, exc)
        return False
    if len(chunks) == 1:
        answers = [ask(chunks[0])]
    else:
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(chunks))) as pool:
            answers = list(pool.map(ask, chunks))
    asked, found, failed, error = [], [], [], None
    for chunk, answer in zip(chunks, answers, strict=True):
        if isinstance(answer, UpstreamError):
            failed += chunk
            error = answer
        else:
            asked += chunk
            found += answer
    if asked:
        merge(connection, asked, found)
    if error is not None:
        record_error(connection, failed, error)
        return False
    breaker.record_success(connection)
    return True


def _ask(client, chunk: list[str]) -> list[UpstreamTask] | UpstreamError:
    """One chunk's answer, or its failure as a value (so the other chunks still count)."""
    try:
        return client.list_by_condition(chunk)
    except UpstreamError as exc:
        return exc


def recheck(task: TrackedTask) -> None:
    """One task, asked now with a single fetch (the re-check button), at most once per
    refresh interval for each user and task. On a shared gateway,
    a row the user does not own is a guess like any pasted ID: it costs the guessing budget,
    and someone else's task is answered "not found" without a call. A refusal is stored as
    the row's error, so the page shows it where it shows every other."""
    connection = task.connection
    key = f"mjdash:recheck:{task.user_id}:{task.task_id}"
    if not cache.add(key, 1, timeout=max(2, settings.MJDASH_REFRESH_SECONDS)):
        return  # asked moments ago: the button cannot be used to hammer the gateway
    if not ownership.may_use(task.user, connection):
        _note(task, "This site's shared gateway is kept for staff; add your own in Settings.")
        return
    guess = connection.shared and not ownership.owns(task)
    if guess and ownership.guesses_left(task.user) <= 0:
        _note(task, ownership.throttled_message(task.user))
        return
    if guess and not ownership.claim(task.user, connection, [task.task_id]):
        ownership.spend_guesses(task.user, 1)
        _note(task, "")
        return
    try:
        breaker.check(connection)
        found = client_for(connection).fetch(task.task_id)
    except UpstreamError as exc:
        record_error(connection, [task.task_id], exc)
        found = None
    else:
        breaker.record_success(connection)
        merge(connection, [task.task_id], [found] if found else [])
    if guess and found is None:  # unanswered or unknown: it costs, and reserves nothing
        ownership.spend_guesses(task.user, 1)
        ownership.release_unknown(connection, [task.task_id], user=task.user)


def _note(task: TrackedTask, message: str) -> None:
    TrackedTask.objects.filter(pk=task.pk).update(
        last_error=message[:500], last_checked_at=timezone.now()
    )


def merge(connection: UpstreamConnection, asked: list[str], found: list[UpstreamTask]) -> None:
    """Store what the upstream said about `asked`, for every user tracking those ids.
    An asked id that did not come back is not known upstream: it stops being polled, and
    its last known state is kept."""
    by_id = {task.id: task for task in found}
    rows = list(TrackedTask.objects.filter(connection=connection, task_id__in=asked))
    owners = ownership.owner_filter(connection, asked)
    if connection.shared:  # only the owner's row is ever filled in
        rows = [row for row in rows if owners.get(row.task_id) == row.user_id]
    changed, unknown = [], []
    for row in rows:
        before = _state(row)
        task = by_id.get(row.task_id)
        if task is None:
            row.missing_upstream = True
            if not row.raw:
                unknown.append(row.task_id)
        else:
            apply(row, task)
        if _state(row) != before:
            changed.append(row)
    # Most polls change few rows: write those, and stamp the check on all in one UPDATE.
    TrackedTask.objects.bulk_update(changed, MERGED_FIELDS, batch_size=200)
    TrackedTask.objects.filter(pk__in=[row.pk for row in rows]).update(
        last_checked_at=timezone.now(), last_error=""
    )
    ownership.release_unknown(connection, unknown)


def _state(row: TrackedTask) -> tuple:
    """What a person can see change (the raw JSON alone, e.g. a new ?rand=, does not count)."""
    return tuple(getattr(row, name) for name in MERGED_FIELDS if name != "raw")


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
    log.warning("upstream %s: %s", connection.display_url, exc.message)
    TrackedTask.objects.filter(connection=connection, task_id__in=ids).update(
        last_error=exc.message[:500], last_checked_at=timezone.now()
    )  # an error says nothing about the task, so strangers' rows may carry it too
    if not connection.circuit_open:  # the breaker's own refusal is not a new failure
        breaker.record_failure(connection, exc)
