"""Adding and removing tracked tasks: the paste flow's service."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils import timezone

from .ids import parse
from .models import TrackedTask, connection_for
from .refresh import refresh_connection


@dataclass
class TrackResult:
    added: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    truncated: bool = False
    upstream_ok: bool = True

    @property
    def nothing_found(self) -> bool:
        return not (self.added or self.already or self.rejected)


def track(user, text: str) -> TrackResult:
    """Parse pasted text, store the IDs this user does not track yet, and ask the upstream
    about the new ones at once (one batched call), so they show real state straight away."""
    parsed = parse(text)
    result = TrackResult(
        duplicates=parsed.duplicates, rejected=parsed.rejected, truncated=parsed.truncated
    )
    if not parsed.ids:
        return result
    existing = set(
        TrackedTask.objects.filter(user=user, task_id__in=parsed.ids).values_list(
            "task_id", flat=True
        )
    )
    result.already = [i for i in parsed.ids if i in existing]
    result.added = [i for i in parsed.ids if i not in existing]
    if result.added:
        connection = connection_for(user)
        now = timezone.now()  # one paste shares a timestamp, so the list keeps its order
        TrackedTask.objects.bulk_create(
            [
                TrackedTask(user=user, connection=connection, task_id=i, added_at=now)
                for i in result.added
            ],
            ignore_conflicts=True,  # a second tab pasting the same IDs at the same moment
        )
        result.upstream_ok = refresh_connection(connection, result.added)
    return result
