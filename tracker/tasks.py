"""Background jobs (Django's Tasks framework, run by `python manage.py db_worker`). Thin:
each one hands its work to the module that owns it."""

from __future__ import annotations

from django.tasks import task
from django.utils import timezone

from .models import TrackedTask


@task()
def archive_images(row_id: int) -> str:
    """Keep a finished task's images (tracker/archive.py). Retries schedule themselves."""
    from . import archive  # archive reaches the gateway service, which reaches refresh

    return archive.run(row_id)


def archive_soon(rows: list[TrackedTask]) -> None:
    """Queue an archive job for each row that succeeded with something to keep (never done
    in the request that sees the success)."""
    due = [row.pk for row in rows if row.is_done and row.has_media and row.archived_at is None]
    TrackedTask.objects.filter(pk__in=due).update(archive_due_at=timezone.now())
    for pk in due:
        archive_images.enqueue(pk)


@task()
def send_notices(channel_id: int) -> str:
    """Bundle what one notification channel owes into messages (tracker/notify.py): each
    finished task as its own, or all of them as one on a digest channel."""
    from . import notify  # notify reaches the gateway service, which reaches refresh

    return notify.send_pending(channel_id)


@task()
def send_delivery(delivery_id: int) -> str:
    """One attempt at one notification message (a retry schedules itself again)."""
    from . import notify

    return notify.attempt(delivery_id)
