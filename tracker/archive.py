"""The image archive: every file of a finished task, kept once in a Django storage.

When a task succeeds, a background job (tracker/tasks.py) fetches its result through the
gateway service, once: the whole picture or clip, the grid's four images (the gateway's
imageUrls, or crops of the grid), its videos, and a WebP thumbnail of each. Files are named
by their sha256, so what two rows share is stored once; each user reaches a file only through
a row of their own, and a file no row refers to any more is deleted.

Nothing partial is ever kept: bytes go to an unnamed temporary file (gone with the process,
however it ends) while they are hashed and checked, and only then into the storage, before
the Blob row that makes them visible.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import BinaryIO

from django.conf import settings
from django.core.cache import cache
from django.core.files import File
from django.core.files.storage import storages
from django.db import IntegrityError, transaction
from django.db.models import F, ProtectedError, Q, Sum
from django.utils import timezone
from PIL import Image

from . import gateway
from .gateway import GatewayError, ImageStream
from .models import ArchivedFile, Blob, Status, TrackedTask
from .stored_text import Stored
from .tasks import archive_images, archive_soon
from .thumbnails import GRID_ACTIONS, first_frame, open_picture, quadrants, thumbnail

log = logging.getLogger(__name__)
COPY_CHUNK = 256 * 1024
SWEEP_EVERY = 60  # seconds between looks for archive jobs that were lost
MAX_BACKOFF = timedelta(hours=6)
MAX_VIDEOS = 4  # clips kept per task: a gateway listing a thousand is not a thousand files
# Why a row is not archived, stored in English (archive_error); pages translate it.
GAVE_UP = Stored.gettext("Archiving stopped: the worker never finished this job (%(tries)s tries).")
UNEXPECTED = Stored.gettext("Archiving failed unexpectedly (%(kind)s).")
TAKEN_OVER = Stored.gettext("Another worker took this archive job over; it carries on.")
UNREADABLE = Stored.gettext("The file is not a picture mjdash can read.")
PICTURE_REFUSED = Stored.gettext("The picture was refused: %(error)s.")
VIDEO_REFUSED = Stored.gettext("The video was refused: %(error)s.")
FULL = Stored.gettext(
    "Your archive is full (%(megabytes)s MB). Untrack tasks you no longer need to make room; "
    "nothing was deleted."
)


class ArchiveError(GatewayError):
    """Archiving cannot go on: over the quota, or a file no picture reader accepts."""


def storage():
    return storages["archive"]


# --- which rows need archiving ---------------------------------------------------------------


def needs_archive() -> Q:
    """Succeeded, with something to keep, and not kept yet."""
    has_media = ~Q(image_url="") | ~Q(video_url="")
    return Q(status=Status.SUCCESS, archived_at__isnull=True) & has_media


def sweep(limit: int = 200) -> int:
    """Queue again the archive jobs that were lost: never queued (tasks that finished before
    the archive existed), or queued long ago and still not done because the worker that took
    them died. A job whose lease still runs is left alone. At most once a minute."""
    if not cache.add("mjdash:archive-sweep", 1, timeout=SWEEP_EVERY):
        return 0
    now = timezone.now()
    lease = timedelta(seconds=settings.MJDASH_ARCHIVE_LEASE_SECONDS)
    lost = (
        TrackedTask.objects.filter(needs_archive())
        .filter(
            Q(archive_due_at__isnull=True, archive_attempts=0) | Q(archive_due_at__lt=now - lease)
        )
        .filter(Q(archive_lease_until__isnull=True) | Q(archive_lease_until__lt=now))
        .only("pk", "status", "image_url", "video_url", "archived_at")
    )
    rows = list(lost.filter(archive_attempts__lt=settings.MJDASH_ARCHIVE_ATTEMPTS)[:limit])
    archive_soon(rows)
    lost.filter(archive_attempts__gte=settings.MJDASH_ARCHIVE_ATTEMPTS, archive_error="").update(
        archive_error=GAVE_UP.english(tries=settings.MJDASH_ARCHIVE_ATTEMPTS),
        archive_due_at=None,
    )
    return len(rows)


# --- the job ---------------------------------------------------------------------------------


def run(row_id: int) -> str:
    """Archive one row, under a lease so that two workers never do the same job at once. The
    attempt is counted when the lease is taken, so a job whose worker keeps dying (killed,
    out of memory) ends after MJDASH_ARCHIVE_ATTEMPTS like any other. On failure the row
    says why, and a transient failure is tried again later, waiting longer each time.
    Returns what happened, for the worker's log."""
    lease = Lease.take(row_id)
    if lease is None:
        return "skipped: done already, given up, or another worker holds it"
    task = TrackedTask.objects.select_related("gateway", "user").get(pk=row_id)
    try:
        archive(task, renew=lease.renew)
    except GatewayError as exc:
        return _failed(task, exc)
    except Exception as exc:  # a bug or a broken storage: say so, and try again later
        log.exception("archiving %s failed unexpectedly", task.task_id)
        return _failed(task, ArchiveError(UNEXPECTED.english(kind=exc.__class__.__name__)))
    finally:
        lease.release()
    return f"archived {task.task_id}"


class Lease:
    """One worker's hold on one row's archive job: the row's lease_until is its token, so
    only the holder renews or releases it, and a job that outlives its lease (a slow
    gateway) is noticed when it next renews."""

    def __init__(self, row_id: int, until) -> None:
        self.row_id, self.until = row_id, until

    @classmethod
    def take(cls, row_id: int) -> Lease | None:
        now = timezone.now()
        until = now + timedelta(seconds=settings.MJDASH_ARCHIVE_LEASE_SECONDS)
        taken = (
            TrackedTask.objects.filter(needs_archive(), pk=row_id)
            .filter(archive_attempts__lt=settings.MJDASH_ARCHIVE_ATTEMPTS)
            .filter(Q(archive_lease_until__isnull=True) | Q(archive_lease_until__lt=now))
            .update(archive_lease_until=until, archive_attempts=F("archive_attempts") + 1)
        )
        return cls(row_id, until) if taken else None

    def renew(self) -> None:
        until = timezone.now() + timedelta(seconds=settings.MJDASH_ARCHIVE_LEASE_SECONDS)
        mine = TrackedTask.objects.filter(pk=self.row_id, archive_lease_until=self.until)
        if not mine.update(archive_lease_until=until):
            raise ArchiveError(TAKEN_OVER.english())
        self.until = until

    def release(self) -> None:
        TrackedTask.objects.filter(pk=self.row_id, archive_lease_until=self.until).update(
            archive_lease_until=None
        )


def _failed(task: TrackedTask, exc: GatewayError) -> str:
    attempts = task.archive_attempts  # this one included (counted with the lease)
    retry = not exc.permanent and attempts < settings.MJDASH_ARCHIVE_ATTEMPTS
    due = timezone.now() + min(timedelta(seconds=30 * 4 ** max(0, attempts - 1)), MAX_BACKOFF)
    TrackedTask.objects.filter(pk=task.pk).update(
        archive_error=exc.message[:500], archive_due_at=due if retry else None
    )
    log.info("archive of %s failed (attempt %s): %s", task.task_id, attempts, exc.message)
    if retry:
        archive_images.using(run_after=due).enqueue(task.pk)
        return f"failed, retrying at {due:%H:%M:%S}: {exc.message}"
    return f"failed for good: {exc.message}"


def retry(task: TrackedTask) -> None:
    """The owner asked to try again: a fresh set of attempts, queued now."""
    TrackedTask.objects.filter(pk=task.pk).update(archive_attempts=0, archive_error="")
    archive_soon([task])


# --- archiving one task ----------------------------------------------------------------------


@dataclass
class Kept:
    part: int
    original: Blob
    thumbnail: Blob | None
    source_url: str


def archive(task: TrackedTask, renew=lambda: None) -> None:
    """Fetch and keep every file of a finished task, or raise GatewayError and keep none of
    its rows (the files already stored are collected when nothing refers to them). `renew`
    is called after each file, to keep the worker's lease."""
    _check_quota(task, [])
    if _copy_from_twin(task):
        return
    kept: list[Kept] = []
    try:
        main = _store(gateway.open_image(task))
        _add(kept, Kept(ArchivedFile.WHOLE, main, None, task.image_url))
        renew()
        _quadrants(task, main, kept, renew)
        _videos(task, main, kept, renew)
        _keep(task, kept)
    except BaseException:
        collect([b.pk for k in kept for b in (k.original, k.thumbnail) if b])
        raise


def _keep(task: TrackedTask, kept: list[Kept]) -> None:
    """The row's files, all at once, and the row marked archived."""
    before = ArchivedFile.objects.filter(task=task)
    replaced = [
        *before.values_list("original_id", flat=True),
        *before.exclude(thumbnail=None).values_list("thumbnail_id", flat=True),
    ]
    with transaction.atomic():
        before.delete()
        ArchivedFile.objects.bulk_create(
            ArchivedFile(
                task=task,
                part=k.part,
                original_id=k.original.pk,
                thumbnail_id=k.thumbnail.pk if k.thumbnail else None,
                source_url=k.source_url[:1000],
            )
            for k in kept
        )
        TrackedTask.objects.filter(pk=task.pk).update(
            archived_at=timezone.now(), archive_error="", archive_due_at=None
        )
    collect(replaced)  # a second run (a ZIP racing the worker) leaves no orphans


def _copy_from_twin(task: TrackedTask) -> bool:
    """Another row for the same task on the same gateway (same URL and token) is archived
    already: share its files instead of fetching them again."""
    twin = (
        TrackedTask.objects.filter(gateway=task.gateway, task_id=task.task_id)
        .exclude(pk=task.pk)
        .filter(archived_at__isnull=False)
        .first()
    )
    if twin is None:
        return False
    _keep(task, [Kept(f.part, f.original, f.thumbnail, f.source_url) for f in twin.files.all()])
    return True


def _quadrants(task: TrackedTask, main: Blob, kept: list[Kept], renew) -> None:
    """The grid's four images: the gateway's own (imageUrls) when it lists them, otherwise
    crops of the grid. Upscales and other single images have none."""
    pictures = [url for url in task.image_urls if not _is_video_url(url)]
    if len(pictures) >= 2:
        for n, url in enumerate(pictures[:4], start=1):
            _fetch(task, n, url, kept)
            renew()
        return
    if main.is_video or task.action not in GRID_ACTIONS:
        return
    with storage().open(main.name, "rb") as source:
        crops = quadrants(_picture(source))
    for n, data in enumerate(crops, start=1):
        _add(kept, Kept(n, _store_bytes(data, "image/png"), None, ""))


def _videos(task: TrackedTask, main: Blob, kept: list[Kept], renew) -> None:
    """The task's clips (videoUrl, and .mp4 entries of imageUrls), each once."""
    urls = [task.video_url, *(u for u in task.image_urls if _is_video_url(u))]
    urls = [u for u in dict.fromkeys(urls) if u and u != task.image_url]
    if main.is_video and task.video_url in (task.image_url, ""):
        urls = [u for u in urls if u != task.video_url]
    for n, url in enumerate(urls[:MAX_VIDEOS], start=ArchivedFile.FIRST_VIDEO):
        _fetch(task, n, url, kept)
        renew()


def _fetch(task: TrackedTask, part: int, url: str, kept: list[Kept]) -> None:
    _check_quota(task, kept)  # before each file: one task cannot run far past the quota
    _add(kept, Kept(part, _store(gateway.open_file(task, url)), None, url))


def _add(kept: list[Kept], item: Kept) -> None:
    """Count a stored file as kept (so that a failure further on still collects it), then
    make its thumbnail."""
    kept.append(item)
    item.thumbnail = _thumbnail_of(item.original)


def _is_video_url(url: str) -> bool:
    return url.split("?", 1)[0].lower().endswith((".mp4", ".webm"))


# --- storing ---------------------------------------------------------------------------------


def _store(stream: ImageStream) -> Blob:
    """Keep a fetched file: streamed into an unnamed temporary file (never all in memory)
    while it is hashed, then saved under its hash unless that file is kept already."""
    with tempfile.TemporaryFile() as tmp:
        digest, size = hashlib.sha256(), 0
        for chunk in stream.chunks():  # raises (and keeps nothing) on any broken rule
            tmp.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        return _save(tmp, digest.hexdigest(), size, stream.content_type)


def _store_bytes(data: bytes, content_type: str) -> Blob:
    with tempfile.TemporaryFile() as tmp:
        tmp.write(data)
        return _save(tmp, hashlib.sha256(data).hexdigest(), len(data), content_type)


def _save(tmp: BinaryIO, sha256: str, size: int, content_type: str) -> Blob:
    files = storage()
    existing = Blob.objects.filter(sha256=sha256).first()
    if existing is not None:
        if not files.exists(existing.name):  # lost (a race with a collection): put it back
            tmp.seek(0)
            _write(files, existing.name, tmp)
        return existing
    blob = Blob(sha256=sha256, size=size, content_type=content_type)
    if not blob.is_video:
        tmp.seek(0)
        blob.width, blob.height = _dimensions(tmp)
    tmp.seek(0)
    _write(files, blob.name, tmp, size)
    try:
        with transaction.atomic():
            blob.save()
    except IntegrityError:
        return Blob.objects.get(sha256=sha256)
    return blob


def _write(files, name: str, tmp: BinaryIO, size: int | None = None) -> None:
    """Put the bytes at `name`. A file already there with the right size is the same bytes
    (the name is their hash); one with another size is what a killed worker left half
    written, and is replaced."""
    if files.exists(name):
        if size is not None and files.size(name) == size:
            return
        files.delete(name)
    saved = files.save(name, File(tmp, name=name))
    if saved != name:  # a racing worker wrote the same bytes first: keep one
        files.delete(saved)


def _dimensions(source: BinaryIO) -> tuple[int, int]:
    """Width and height from the header, refusing what no picture reader should open."""
    try:
        with Image.open(source, formats=["PNG", "JPEG", "WEBP", "GIF"]) as image:
            return image.width, image.height
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ArchiveError(UNREADABLE.english(), permanent=True) from exc


def _picture(source: BinaryIO) -> Image.Image:
    try:
        return open_picture(source)
    except ValueError as exc:
        raise ArchiveError(PICTURE_REFUSED.english(error=exc), permanent=True) from exc


def _thumbnail_of(blob: Blob) -> Blob:
    """A WebP of about 512 px, made from the kept file, never from a second download. For a
    video it is the first frame; a video PyAV cannot read is refused."""
    with storage().open(blob.name, "rb") as source:
        if blob.is_video:
            try:
                picture = first_frame(source, blob.content_type)
            except ValueError as exc:  # only its first bytes looked like a video
                raise ArchiveError(VIDEO_REFUSED.english(error=exc), permanent=True) from exc
        else:
            picture = _picture(source)
    return _store_bytes(thumbnail(picture), "image/webp")


# --- space -----------------------------------------------------------------------------------


def usage(user) -> int:
    """Bytes of the archive this user's rows refer to (each file counted once)."""
    files = ArchivedFile.objects.filter(task__user=user)
    ids = set(files.values_list("original_id", flat=True))
    ids |= set(files.exclude(thumbnail=None).values_list("thumbnail_id", flat=True))
    return Blob.objects.filter(pk__in=ids).aggregate(total=Sum("size"))["total"] or 0


def quota_bytes() -> int:
    return settings.MJDASH_ARCHIVE_QUOTA_MB * 1024 * 1024


def _check_quota(task: TrackedTask, kept: list[Kept]) -> None:
    """Refuse to store more once the user's archive is full, counting what this job has
    stored so far."""
    if not quota_bytes():
        return
    so_far = sum(k.original.size + (k.thumbnail.size if k.thumbnail else 0) for k in kept)
    if usage(task.user) + so_far >= quota_bytes():
        raise ArchiveError(FULL.english(megabytes=settings.MJDASH_ARCHIVE_QUOTA_MB), permanent=True)


def forget(rows) -> int:
    """Untrack `rows`, and delete the archived files that no other row refers to. Returns
    how many tasks were untracked."""
    files = ArchivedFile.objects.filter(task__in=rows)
    blob_ids = [
        *files.values_list("original_id", flat=True),
        *files.exclude(thumbnail=None).values_list("thumbnail_id", flat=True),
    ]
    _, deleted = rows.delete()  # the tasks, and their files' and tags' rows with them
    collect(blob_ids)
    return deleted.get(TrackedTask._meta.label, 0)


def collect(blob_ids: list[int]) -> int:
    """Delete the files among `blob_ids` that no row refers to any more. Each is re-checked
    and its row deleted in a transaction before its file goes (after the commit): a worker
    that took up the same file meanwhile either made its reference first (the file stays),
    or fails to make it (the database refuses a reference to a deleted row) and tries again."""
    removed = 0
    for blob in Blob.objects.filter(pk__in=set(blob_ids)):
        with transaction.atomic():
            in_use = ArchivedFile.objects.filter(Q(original=blob) | Q(thumbnail=blob))
            if in_use.exists():
                continue
            try:
                blob.delete()
            except ProtectedError:
                continue
            transaction.on_commit(partial(storage().delete, blob.name))
            removed += 1
    return removed
