"""A task as plain data: the one dict the CSV and JSON exports and the JSON API all show, and
the streams that write a whole filtered list of them without holding it in memory."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime

from django.db.models import Prefetch, QuerySet, prefetch_related_objects

from .models import ArchivedFile, TrackedTask
from .zips import spreadsheet_safe  # the one formula-injection guard

CHUNK = 500  # rows fetched (and prefetched) at a time
# Keys of a task's `properties` that may carry someone's secret (a webhook's URL, a token):
# the gateway's own bookkeeping is shown, these never are.
# The gateway's `properties` is a free map that may hold a hook URL or a key: only the known
# bookkeeping entries, as plain values, leave mjdash.
PUBLIC_PROPERTIES = frozenset({
    "finalPrompt", "finalZhPrompt", "messageId", "messageHash", "progressMessageId",
    "referencedMessageId", "flags", "nonce", "discordInstanceId", "discordChannelId",
    "botType", "customId", "custom_id",
})  # fmt: skip


def with_related(rows: QuerySet) -> QuerySet:
    """`rows`, fetching what `as_dict` reads in a fixed number of queries, however many."""
    return rows.select_related("gateway").prefetch_related(*_related())


def one(task: TrackedTask) -> dict:
    """`as_dict` of a task already loaded (with its gateway): only its tags and files more."""
    prefetch_related_objects([task], *_related())
    return as_dict(task)


def _related() -> list:
    return ["tags", Prefetch("files", ArchivedFile.objects.select_related("original"))]


def as_dict(task: TrackedTask) -> dict:
    """Everything stored about a task but the gateway's raw answer and its token."""
    files = task.files.all()
    return {
        "id": task.task_id,
        "status": task.status,
        "status_label": str(task.status_label),  # in the language of the request
        "progress": task.progress,
        "action": task.action,
        "prompt": task.prompt,
        "prompt_en": task.prompt_en,
        "description": task.description,
        "state": task.state,
        "fail_reason": task.fail_reason,
        "image_url": task.image_url,
        "image_urls": list(task.image_urls or []),
        "video_url": task.video_url,
        "buttons": list(task.buttons or []),
        "properties": _public(task.properties),
        "submitted_at": _iso(task.submitted_at),
        "started_at": _iso(task.started_at),
        "finished_at": _iso(task.finished_at),
        "parent_task_id": task.parent_task_id,
        "seed": task.seed,
        "gateway": task.gateway.display_url,
        "missing_at_gateway": task.missing_at_gateway,
        "last_checked_at": _iso(task.last_checked_at),
        "last_error": task.last_error,
        "added_at": _iso(task.added_at),
        "favourite": task.favourite,
        "hidden": task.hidden,
        "note": task.note,
        "tags": sorted(tag.name for tag in task.tags.all()),
        "archived": task.archived_at is not None,
        "archived_at": _iso(task.archived_at),
        "archive_error": task.archive_error,
        "kept_files": len(files),
        "kept_bytes": sum(f.original.size for f in files),
        "downloaded_at": _iso(task.downloaded_at),
    }


def dicts(rows: QuerySet) -> Iterator[dict]:
    """Each row's dict, read from the database CHUNK rows at a time."""
    for task in with_related(rows).iterator(chunk_size=CHUNK):
        yield as_dict(task)


def json_stream(rows: QuerySet) -> Iterator[str]:
    """A JSON array of the rows' dicts, written as it is read."""
    separator = "[\n"
    for record in dicts(rows):
        yield separator + json.dumps(record, ensure_ascii=False)
        separator = ",\n"
    yield "[]\n" if separator == "[\n" else "\n]\n"


def csv_stream(rows: QuerySet) -> Iterator[str]:
    """The rows as CSV under a line of column names (none when there is no row). A list
    cell is its items joined (tags by ", "), a nested one its JSON. It starts with a
    byte-order mark, so spreadsheets read it as UTF-8."""
    writer = csv.writer(_Line())
    yield "\ufeff"
    for number, record in enumerate(dicts(rows)):
        if number == 0:
            yield writer.writerow(record.keys())
        yield writer.writerow(_cells(record))


def _cells(record: dict) -> list[str]:
    return [spreadsheet_safe(_text(name, value)) for name, value in record.items()]


def _text(name: str, value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if name == "tags":
        return ", ".join(value)
    if name == "image_urls":
        return " ".join(value)
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False) if value else ""
    return str(value)


class _Line:
    """What csv.writer writes to: it hands each line back instead of keeping it."""

    def write(self, line: str) -> str:
        return line


def _public(properties) -> dict:
    if not isinstance(properties, dict):
        return {}
    return {
        key: value
        for key, value in properties.items()
        if key in PUBLIC_PROPERTIES and isinstance(value, str | int | float | bool | None)
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
