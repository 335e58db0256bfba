"""The archive: a finished task's images are kept once, by the background worker, and are
served from there, with no gateway call, long after the gateway's link has died."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.core.files.storage import storages
from django.utils import timezone
from PIL import Image

from tests.conftest import (
    BOB_TOKEN,
    ROOT,
    database_url,
    make_deferred_jobs_due,
    run_worker,
    start_sandbox,
    track_new_task,
    use_gateway,
    wait_until,
)
from tracker.models import ArchivedFile, Blob, TrackedTask

pytestmark = pytest.mark.django_db(transaction=True)


def archive_files() -> list[Path]:
    root = Path(storages["archive"].location)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def archived(client, sandbox, **fields) -> TrackedTask:
    """Track a task that finishes at once, and let the worker archive it."""
    task_id = track_new_task(client, sandbox, **fields)
    run_worker()
    row = TrackedTask.objects.get(task_id=task_id)
    assert row.archived_at is not None, row.archive_error
    return row


def test_success_queues_an_archive_job_and_the_request_does_not_wait_for_it(alice_client, sandbox):
    task_id = track_new_task(alice_client, sandbox, prompt="a fox")
    row = TrackedTask.objects.get(task_id=task_id)
    assert row.is_done and row.archived_at is None and row.archive_due_at is not None
    assert archive_files() == []
    run_worker()
    row.refresh_from_db()
    assert row.archived_at is not None


def test_a_grid_is_kept_whole_and_as_four_images_each_with_a_thumbnail(alice_client, sandbox):
    row = archived(alice_client, sandbox, prompt="a fox", action="IMAGINE")
    files = list(row.files.select_related("original", "thumbnail"))
    assert [f.part for f in files] == [0, 1, 2, 3, 4]
    grid = files[0].original
    assert (grid.width, grid.height) == (2048, 2048)
    for quadrant in files[1:]:
        assert (quadrant.original.width, quadrant.original.height) == (1024, 1024)
        assert quadrant.original.content_type == "image/png"
    assert len({f.original.sha256 for f in files}) == 5  # four different pictures
    for f in files:
        assert f.thumbnail.content_type == "image/webp"
        assert max(f.thumbnail.width, f.thumbnail.height) == 512


def test_an_upscale_has_no_quadrants(alice_client, sandbox):
    row = archived(alice_client, sandbox, action="UPSCALE")
    assert list(row.files.values_list("part", flat=True)) == [0]


def test_an_archived_image_is_served_without_asking_the_gateway(alice_client, sandbox):
    row = archived(alice_client, sandbox, prompt="a fox")
    sandbox.reset_stats()
    response = alice_client.get(f"/mj/image/{row.task_id}")
    body = b"".join(response.streaming_content)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Cache-Control"] == "private, max-age=31536000, immutable"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["ETag"] == f'"{row.files.get(part=0).original.sha256}"'
    assert int(response["Content-Length"]) == len(body)
    assert Image.open(io.BytesIO(body)).size == (2048, 2048)
    for path in ("thumb", "1", "1/thumb", "4", "4/thumb"):
        answer = alice_client.get(f"/mj/image/{row.task_id}/{path}")
        assert answer.status_code == 200, path
        b"".join(answer.streaming_content)
    assert sandbox.stats() == {}  # not one gateway call


def test_the_browser_revalidates_with_a_304(alice_client, sandbox):
    row = archived(alice_client, sandbox)
    first = alice_client.get(f"/mj/image/{row.task_id}/thumb")
    again = alice_client.get(
        f"/mj/image/{row.task_id}/thumb", headers={"If-None-Match": first["ETag"]}
    )
    assert again.status_code == 304
    assert again["ETag"] == first["ETag"]
    assert again.content == b""


def test_a_quadrant_downloads_under_a_readable_name(alice_client, sandbox):
    row = archived(alice_client, sandbox, prompt="Red Fox, snow!")
    response = alice_client.get(f"/mj/image/{row.task_id}/3?download=1")
    assert response["Content-Disposition"] == (
        f'attachment; filename="red-fox-snow_{row.task_id}_3.png"'
    )


def test_before_archiving_the_original_streams_from_the_gateway_uncached(alice_client, sandbox):
    task_id = track_new_task(alice_client, sandbox)
    response = alice_client.get(f"/mj/image/{task_id}")
    b"".join(response.streaming_content)
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-store"
    thumb = alice_client.get(f"/mj/image/{task_id}/thumb")
    assert thumb["Content-Type"] == "image/svg+xml"  # never made from a download here
    assert "Archiving" in thumb.content.decode()


def test_a_refetch_or_a_second_user_on_the_same_token_stores_the_bytes_once(
    alice_client, sandbox, bob, bob_client, django_user_model
):
    dave = django_user_model.objects.create_user("dave", password="x")
    use_gateway(dave, sandbox.url, BOB_TOKEN)  # bob and dave share one gateway token
    task_id = track_new_task(bob_client, sandbox, token=BOB_TOKEN)
    from django.test import Client

    dave_client = Client()
    dave_client.force_login(dave)
    dave_client.post("/", {"ids": task_id})
    run_worker()
    rows = TrackedTask.objects.filter(task_id=task_id)
    assert rows.count() == 2 and all(r.archived_at for r in rows)
    assert Blob.objects.count() == 10  # 5 pictures and 5 thumbnails, for both rows
    assert len(archive_files()) == 10
    bob_row, dave_row = rows.get(user=bob), rows.get(user=dave)
    assert set(bob_row.files.values_list("original_id", flat=True)) == set(
        dave_row.files.values_list("original_id", flat=True)
    )


def test_untracking_removes_the_files_no_other_row_uses(
    alice_client, sandbox, bob, bob_client, django_user_model
):
    dave = django_user_model.objects.create_user("dave", password="x")
    use_gateway(dave, sandbox.url, BOB_TOKEN)
    task_id = track_new_task(bob_client, sandbox, token=BOB_TOKEN)
    from django.test import Client

    dave_client = Client()
    dave_client.force_login(dave)
    dave_client.post("/", {"ids": task_id})
    run_worker()
    bob_client.post(f"/tasks/{task_id}/untrack/")
    assert len(archive_files()) == 10  # dave still has them
    dave_client.post(f"/tasks/{task_id}/untrack/")
    assert archive_files() == []
    assert Blob.objects.count() == 0


def test_a_failed_archive_says_why_and_retries_later(alice_client, sandbox):
    task_id = track_new_task(alice_client, sandbox)
    sandbox.fault("image", "status", status=500)
    run_worker()
    row = TrackedTask.objects.get(task_id=task_id)
    assert row.archived_at is None
    assert row.archive_attempts == 1
    assert "HTTP 500" in row.archive_error
    assert row.archive_due_at > timezone.now() + timedelta(seconds=20)  # backs off
    page = alice_client.get(f"/tasks/{task_id}/").content.decode()
    assert "Not archived yet:" in page and "HTTP 500" in page
    response = alice_client.get(f"/mj/image/{task_id}")  # still streamed meanwhile
    sandbox.clear_faults()
    response = alice_client.get(f"/mj/image/{task_id}")
    b"".join(response.streaming_content)
    assert response.status_code == 200
    TrackedTask.objects.filter(pk=row.pk).update(archive_due_at=timezone.now())
    make_deferred_jobs_due()  # the backoff has passed
    run_worker()
    row.refresh_from_db()
    assert row.archived_at is not None and row.archive_error == ""


def test_the_quota_stops_archiving_with_a_clear_message_and_deletes_nothing(
    alice_client, sandbox, settings
):
    settings.MJDASH_ARCHIVE_QUOTA_MB = 1
    first = archived(alice_client, sandbox)
    second = track_new_task(alice_client, sandbox)
    run_worker()
    row = TrackedTask.objects.get(task_id=second)
    assert row.archived_at is None
    assert "archive is full" in row.archive_error
    assert first.files.count() == 5  # nothing deleted
    page = alice_client.get("/settings/").content.decode()
    assert "Your archive is full" in page


def test_settings_show_the_space_the_archive_takes(alice_client, sandbox):
    archived(alice_client, sandbox)
    page = alice_client.get("/settings/").content.decode()
    assert "1 task kept" in page
    assert "MB</strong>" in page


def test_with_the_gateway_gone_every_archived_file_is_still_served(
    alice_client, alice, tmp_path, settings
):
    gone = start_sandbox(tmp_path / "gone-images")
    try:
        settings.MJDASH_GATEWAY_URL = gone.url
        settings.MJDASH_IMAGE_HOSTS = [gone.url.replace("127.0.0.1", "localhost").split("//")[1]]
        row = archived(alice_client, gone, prompt="soon gone")
        clip = archived(alice_client, gone, prompt="a clip", action="VIDEO")
    finally:
        gone.process.kill()
        gone.process.wait(timeout=5)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{gone.url}/_sandbox/health")
    paths = [f"{row.task_id}{p}" for p in ("", "/thumb", "/1", "/2/thumb")]
    paths += [f"{clip.task_id}/{f.part}" for f in clip.files.all()]
    for path in paths:
        response = alice_client.get(f"/mj/image/{path}")
        assert response.status_code == 200, path
        b"".join(response.streaming_content)
    page = alice_client.get("/gallery/")
    assert page.status_code == 200 and row.task_id in page.content.decode()
    response = alice_client.post("/gallery/download.zip", {"scope": "all"})
    names = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).namelist()
    assert f"soon-gone_{row.task_id}.png" in names
    assert any(n.startswith(f"a-clip_{clip.task_id}") and n.endswith(".mp4") for n in names)
    assert "errors.txt" not in names


def test_a_video_plays_from_the_archive_with_a_poster_and_seeks_by_range(alice_client, sandbox):
    row = archived(alice_client, sandbox, prompt="a clip", action="VIDEO")
    videos = [f for f in row.files.select_related("original", "thumbnail") if f.is_video]
    assert videos, list(row.files.values_list("part", "original__content_type"))
    clip = videos[0]
    assert clip.thumbnail is not None and clip.thumbnail.content_type == "image/webp"
    url = f"/mj/image/{row.task_id}/{clip.part}"
    whole = alice_client.get(url)
    assert whole["Accept-Ranges"] == "bytes"
    body = b"".join(whole.streaming_content)
    assert len(body) == clip.original.size
    part = alice_client.get(url, headers={"Range": "bytes=100-299"})
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 100-299/{clip.original.size}"
    assert b"".join(part.streaming_content) == body[100:300]
    tail = alice_client.get(url, headers={"Range": "bytes=-50"})
    assert b"".join(tail.streaming_content) == body[-50:]
    beyond = alice_client.get(url, headers={"Range": f"bytes={clip.original.size}-"})
    assert beyond.status_code == 416
    assert beyond["Content-Range"] == f"bytes */{clip.original.size}"
    page = alice_client.get(f"/tasks/{row.task_id}/").content.decode()
    assert f'src="{url}"' in page and f'poster="{url}/thumb"' in page


def test_archived_files_are_named_by_their_sha256(alice_client, sandbox):
    row = archived(alice_client, sandbox)
    import hashlib

    for f in ArchivedFile.objects.filter(task=row).select_related("original"):
        path = Path(storages["archive"].path(f.original.name))
        assert hashlib.sha256(path.read_bytes()).hexdigest() == f.original.sha256


def worker_process(settings, *, once: bool = False) -> subprocess.Popen:
    """The task-queue worker as its own process group, on this test's database, queue and
    archive: `db_worker`, or `rqworker` on the RQ queue. `once`: the jobs due, then it stops."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(),
        "MJDASH_ARCHIVE_OPTIONS": json.dumps(settings.STORAGES["archive"]["OPTIONS"]),
        "MJDASH_GATEWAY_URL": settings.MJDASH_GATEWAY_URL,
        "MJDASH_GATEWAY_TOKEN": settings.MJDASH_GATEWAY_TOKEN,
        "MJDASH_ARCHIVE_LEASE_SECONDS": str(settings.MJDASH_ARCHIVE_LEASE_SECONDS),
    }
    if settings.MJDASH_TASK_QUEUE == "rq":
        command = ["rqworker", "default", "--with-scheduler", *(["--burst"] if once else [])]
    else:
        command = ["db_worker", "--interval", "0.1", "--no-startup-delay"]
        command += ["--batch"] if once else []
    return subprocess.Popen(
        [sys.executable, "manage.py", *command],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def test_a_worker_killed_mid_archive_leaves_no_partial_file_and_the_next_one_finishes(
    alice_client, sandbox, settings
):
    settings.MJDASH_ARCHIVE_LEASE_SECONDS = 3
    task_id = track_new_task(alice_client, sandbox)
    sandbox.fault("image", "drip", seconds=0.1)  # the image arrives a byte at a time
    sandbox.reset_stats()
    worker = worker_process(settings)
    try:
        wait_until(lambda: sandbox.stats().get("image"), timeout=20)  # mid-download
        time.sleep(0.5)
    finally:  # SIGKILL to the worker and any child it forked: no cleanup code runs
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=5)
    row = TrackedTask.objects.get(task_id=task_id)
    assert row.archived_at is None and row.archive_lease_until is not None
    assert archive_files() == [] and Blob.objects.count() == 0  # nothing partial kept
    sandbox.clear_faults()
    time.sleep(3.5)  # the dead worker's lease runs out
    alice_client.get("/")  # the next page view queues the lost job again
    finished = worker_process(settings, once=True)
    assert finished.wait(timeout=60) == 0
    row.refresh_from_db()
    assert row.archived_at is not None, row.archive_error
    assert len(archive_files()) == 10


def test_behind_nginx_the_web_server_sends_the_bytes(alice_client, sandbox, settings):
    row = archived(alice_client, sandbox)
    settings.MJDASH_ACCEL_REDIRECT = "/archive-internal/"
    response = alice_client.get(f"/mj/image/{row.task_id}")
    blob = row.files.get(part=0).original
    assert response["X-Accel-Redirect"] == f"/archive-internal/{blob.name}"
    assert response.content == b""
    assert response["ETag"] == f'"{blob.sha256}"'
    assert response["Content-Type"] == "image/png"


def test_a_waiting_thumbnail_asks_again_until_the_archive_has_it(alice_client, sandbox):
    task_id = track_new_task(alice_client, sandbox, prompt="soon")
    gallery = alice_client.get("/gallery/").content.decode()
    assert f'hx-get="/tasks/{task_id}/thumb/"' in gallery  # the tile asks again
    waiting = alice_client.get(f"/tasks/{task_id}/thumb/", headers={"HX-Request": "true"})
    assert waiting.status_code == 200 and "hx-trigger" in waiting.content.decode()
    run_worker()
    done = alice_client.get(f"/tasks/{task_id}/thumb/", headers={"HX-Request": "true"})
    assert done.status_code == 286  # htmx stops asking
    assert f'src="/mj/image/{task_id}/thumb"' in done.content.decode()
    assert "hx-get" not in done.content.decode()
