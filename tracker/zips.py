"""Bulk download: a ZIP streamed as it is made (zipstream-ng), never built in memory or on
disk. It holds each task's files from the archive (fetched and archived on the way when they
are not kept yet), metadata.json and metadata.csv, and errors.txt for what could not be had.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Iterable, Iterator
from datetime import datetime

from django.utils import timezone
from zipstream import ZIP_STORED, ZipStream

from . import archive
from .gateway import GatewayError
from .models import ArchivedFile, Blob, TrackedTask
from .tasks import archive_soon
from .thumbnails import download_name

BLOCK = 256 * 1024
MAX_FETCHED = 20  # images a ZIP fetches and archives on its way; the worker does the rest
COLUMNS = [
    "id", "prompt", "promptEn", "action", "status", "submitTime", "startTime", "finishTime",
    "seed", "sourceUrl", "files",
]  # fmt: skip


def stream(rows: Iterable[TrackedTask], *, quadrants: bool) -> Iterator[bytes]:
    """The ZIP's bytes. Pictures are stored as they are (they are compressed already);
    each task is marked downloaded once its files are in the stream."""
    archive_zip = ZipStream(compress_type=ZIP_STORED)
    records, errors, fetched = [], [], 0
    for row in rows:
        if row.archived_at is None:
            if fetched >= MAX_FETCHED:  # the rest is the worker's: a ZIP is no bulk fetcher
                archive_soon([row])
                errors.append(f"{row.task_id}: not archived yet; queued, try again later.")
                continue
            fetched += 1
            row = _archived_now(row)
        try:
            files = _files(row, quadrants)
        except GatewayError as exc:
            errors.append(f"{row.task_id}: {exc.message}")
            continue
        names = []
        for part, blob in files:
            name = download_name(row.prompt, row.task_id, blob.content_type, part)
            archive_zip.add(_chunks(blob), name, size=blob.size)
            names.append(name)
            yield from archive_zip.all_files()
        records.append(_record(row, names))
        TrackedTask.objects.filter(pk=row.pk, downloaded_at=None).update(
            downloaded_at=timezone.now()
        )
    archive_zip.add(json.dumps(records, ensure_ascii=False, indent=2), "metadata.json")
    archive_zip.add(_csv(records), "metadata.csv")
    if errors:
        archive_zip.add("\n".join(errors) + "\n", "errors.txt")
    yield from archive_zip.finalize()


def _archived_now(row: TrackedTask) -> TrackedTask:
    """Archive a row on the way, as the worker would (its lease, its count of attempts and
    its waits): a row that failed for good, or that a worker holds, is not fetched again."""
    archive.run(row.pk)
    return TrackedTask.objects.get(pk=row.pk)


def _files(row: TrackedTask, quadrants: bool) -> list[tuple[int, Blob]]:
    """(part, file) for what goes in: the whole result, or the grid's four images when asked
    and the task has them; videos always."""
    kept = list(ArchivedFile.objects.filter(task=row).select_related("original"))
    if row.archived_at is None or not kept:
        reason = row.archive_error or "it is being archived right now; try again shortly."
        raise GatewayError(f"not archived yet: {reason}")
    has_quadrants = any(f.is_quadrant for f in kept)
    wanted = [
        f
        for f in kept
        if f.is_video
        or (f.is_quadrant if quadrants and has_quadrants else f.part == ArchivedFile.WHOLE)
    ]
    return [(f.part, f.original) for f in wanted]


def _chunks(blob: Blob) -> Iterator[bytes]:
    with archive.storage().open(blob.name, "rb") as source:
        while block := source.read(BLOCK):
            yield block


def _record(row: TrackedTask, names: list[str]) -> dict:
    return {
        "id": row.task_id,
        "prompt": row.prompt,
        "promptEn": row.prompt_en,
        "action": row.action,
        "status": row.status,
        "submitTime": _iso(row.submitted_at),
        "startTime": _iso(row.started_at),
        "finishTime": _iso(row.finished_at),
        "seed": row.seed,
        "sourceUrl": row.image_url or row.video_url,
        "files": names,
    }


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""


def _csv(records: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS)
    writer.writeheader()
    for record in records:
        writer.writerow(
            {
                k: spreadsheet_safe(v)
                for k, v in {**record, "files": " ".join(record["files"])}.items()
            }
        )
    return out.getvalue()


def spreadsheet_safe(value: str) -> str:
    """A spreadsheet runs a cell that starts with = + - @ as a formula: a prompt is text.
    Leading spaces and the full-width forms (＝, ＋) are looked through, to be safe."""
    first = unicodedata.normalize("NFKC", value[:8]).lstrip()[:1]
    return "'" + value if value[:1] in ("\t", "\r") or first in ("=", "+", "-", "@") else value
