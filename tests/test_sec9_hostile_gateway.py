"""Security, issue 9 review: what a hostile gateway (one a user points their account at) can
send, and how mjdash holds. Each answer is real HTTP from a stub server on loopback."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
import tracemalloc
import zlib
from datetime import timedelta

import pytest
from django.utils import timezone
from PIL import Image

from tests.conftest import ROOT, Answer, run_worker, track_new_task, use_gateway
from tracker import gateway
from tracker.archive import Lease, sweep
from tracker.models import Blob, TrackedTask, gateway_for
from tracker.upstream import UpstreamError

pytestmark = pytest.mark.django_db(transaction=True)
MB = 1024 * 1024
TASK = "1732000000000001"


def gzip_of(chunks) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    return b"".join(packer.compress(c) for c in chunks) + packer.flush()


def gzip_bomb(prefix: bytes, megabytes: int) -> bytes:
    """A few KB that inflate to `megabytes` MB, twice gzipped (Content-Encoding: gzip, gzip)."""
    return gzip_of([gzip_of([prefix, *([b"\0" * MB] * megabytes)])])


def finished_task(base: str, **extra) -> bytes:
    task = {"id": TASK, "status": "SUCCESS", "progress": "100%", "action": "UPSCALE",
            "imageUrl": f"{base}/mj/image/{TASK}", **extra}  # fmt: skip
    return json.dumps([task]).encode()


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), "teal").save(out, "PNG")
    return out.getvalue()


PNG = png()


def test_a_gzip_bomb_as_the_task_list_is_refused_without_inflating_it(alice_client, alice, stub):
    use_gateway(alice, stub.url, "sk-own")
    stub.answer(
        "/mj/task/list-by-condition",
        Answer(
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip, gzip"},
            body=gzip_bomb(b"[", 400),
        ),
    )
    tracemalloc.start()
    answer = alice_client.post("/settings/test/", headers={"HX-Request": "true"})
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert "encoding mjdash does not read" in answer.content.decode()
    assert peak < 20 * MB


def test_one_gzip_layer_is_read_but_never_past_the_cap(alice, stub):
    use_gateway(alice, stub.url, "sk-own")
    fine = gzip_of([finished_task(stub.url)])
    stub.answer(
        "/mj/task/list-by-condition", Answer(headers={"Content-Encoding": "gzip"}, body=fine)
    )
    assert gateway.test_connection(alice)[0]
    bomb = gzip_of([b"[", *([b" " * MB] * 64)])  # 64 MB of spaces in ~64 KB
    stub.answer(
        "/mj/task/list-by-condition", Answer(headers={"Content-Encoding": "gzip"}, body=bomb)
    )
    tracemalloc.start()
    ok, message = gateway.test_connection(alice)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert not ok and "far too large" in message
    assert peak < 20 * MB


def test_a_compressed_image_is_refused_and_nothing_is_kept(alice_client, alice, stub, settings):
    settings.MJDASH_IMAGE_MAX_BYTES = 5 * MB
    use_gateway(alice, stub.url, "sk-own")
    stub.answer("/mj/task/list-by-condition", Answer(body=finished_task(stub.url)))
    stub.answer(
        f"/mj/image/{TASK}",
        Answer(
            headers={"Content-Type": "image/png", "Content-Encoding": "gzip, gzip"},
            body=gzip_bomb(b"\x89PNG\r\n\x1a\n", 400),
        ),
    )
    alice_client.post("/", {"ids": TASK})
    tracemalloc.start()
    run_worker()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    row = TrackedTask.objects.get(task_id=TASK)
    assert row.archived_at is None and "came compressed" in row.archive_error
    assert peak < 20 * MB


def dripping_headers(every: float, for_seconds: float) -> tuple[socket.socket, int]:
    """A server that answers "200 OK" and then one header line every `every` seconds."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)

    def one(conn: socket.socket) -> None:
        conn.recv(65536)
        end = time.monotonic() + for_seconds
        try:
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            while time.monotonic() < end:
                conn.sendall(b"X-Pad: a\r\n")
                time.sleep(every)
            conn.sendall(b"Content-Length: 0\r\n\r\n")
        except OSError:
            pass
        conn.close()

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=one, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


def test_headers_dripped_for_ever_are_cut_off_at_the_overall_deadline(alice, settings):
    settings.MJDASH_GATEWAY_TIMEOUT = 1
    settings.MJDASH_GATEWAY_RETRIES = 0
    settings.MJDASH_IMAGE_TIMEOUT = 2
    server, port = dripping_headers(every=0.3, for_seconds=20)
    try:
        use_gateway(alice, f"http://127.0.0.1:{port}", "sk-own")
        row = TrackedTask.objects.create(
            user=alice, gateway=gateway_for(alice), task_id=TASK, status="SUCCESS",
            image_url=f"http://127.0.0.1:{port}/mj/image/{TASK}",
        )  # fmt: skip
        began = time.monotonic()
        with pytest.raises(UpstreamError, match="in time"):
            gateway.open_image(row).read()
        assert time.monotonic() - began < 3 * 2 + 1  # each try ends by its deadline
        began = time.monotonic()
        ok, message = gateway.test_connection(alice)
        assert not ok and time.monotonic() - began < 2
    finally:
        server.close()


def mp4_of(size: int, mark: int) -> bytes:
    """The sandbox's real clip, padded with a trailing `free` box to `size` bytes."""
    clip = (ROOT / "sandbox/media/clip-h264.mp4").read_bytes()
    pad = size - len(clip) - 8
    return clip + (pad + 8).to_bytes(4, "big") + b"free" + bytes([mark]) * pad


def archive_a_task_with_clips(client, user, stub, *, count: int, size: int) -> TrackedTask:
    """A hostile gateway's finished task that lists `count` real clips of `size` bytes."""
    use_gateway(user, stub.url, "sk-own")
    urls = [f"{stub.url}/clips/{n}.mp4" for n in range(count)]
    stub.answer("/mj/task/list-by-condition", Answer(body=finished_task(stub.url, imageUrls=urls)))
    stub.answer(f"/mj/image/{TASK}", Answer(headers={"Content-Type": "image/png"}, body=PNG))
    for n in range(count):
        stub.answer(f"/clips/{n}.mp4", Answer(body=mp4_of(size, n)))
    client.post("/", {"ids": TASK})
    run_worker()
    return TrackedTask.objects.get(task_id=TASK)


def test_a_task_listing_many_videos_cannot_run_past_the_quota(alice_client, alice, stub, settings):
    settings.MJDASH_ARCHIVE_QUOTA_MB = 1
    row = archive_a_task_with_clips(alice_client, alice, stub, count=40, size=400_000)
    assert "archive is full" in row.archive_error
    assert Blob.objects.count() == 0  # what this job stored before the refusal is gone
    assert sum(1 for r in stub.requests if r["path"].startswith("/clips/")) <= 3


def test_a_task_keeps_at_most_four_videos(alice_client, alice, stub):
    row = archive_a_task_with_clips(alice_client, alice, stub, count=12, size=40_000)
    assert row.archived_at is not None, row.archive_error
    assert list(row.files.values_list("part", flat=True)) == [0, 11, 12, 13, 14]


def test_a_file_that_only_starts_like_a_video_is_refused(alice_client, alice, stub):
    use_gateway(alice, stub.url, "sk-own")
    junk = b"\x00\x00\x00\x18ftypisom" + b"\x07" * 100_000
    stub.answer(
        "/mj/task/list-by-condition",
        Answer(body=finished_task(stub.url, imageUrls=[f"{stub.url}/clips/x.mp4"])),
    )
    stub.answer(f"/mj/image/{TASK}", Answer(headers={"Content-Type": "image/png"}, body=PNG))
    stub.answer("/clips/x.mp4", Answer(body=junk))
    alice_client.post("/", {"ids": TASK})
    run_worker()
    row = TrackedTask.objects.get(task_id=TASK)
    assert row.archived_at is None and "video was refused" in row.archive_error
    assert Blob.objects.count() == 0


def test_a_job_whose_worker_keeps_dying_ends_after_its_tries(alice_client, sandbox, settings):
    settings.MJDASH_ARCHIVE_ATTEMPTS = 2
    settings.MJDASH_ARCHIVE_LEASE_SECONDS = 0
    task_id = track_new_task(alice_client, sandbox)
    row = TrackedTask.objects.get(task_id=task_id)
    assert Lease.take(row.pk) and Lease.take(row.pk)  # two workers killed mid-job
    assert Lease.take(row.pk) is None  # no third
    TrackedTask.objects.filter(pk=row.pk).update(
        archive_due_at=timezone.now() - timedelta(minutes=1)
    )
    sweep()
    row.refresh_from_db()
    assert "Archiving stopped" in row.archive_error and row.archive_due_at is None


def test_a_worker_whose_lease_was_taken_over_stops_and_leaves_the_new_holder_alone(
    alice_client, sandbox, settings
):
    settings.MJDASH_ARCHIVE_LEASE_SECONDS = 0  # runs out at once
    task_id = track_new_task(alice_client, sandbox)
    row = TrackedTask.objects.get(task_id=task_id)
    first = Lease.take(row.pk)
    second = Lease.take(row.pk)  # the first one's lease ran out; another worker takes over
    with pytest.raises(UpstreamError, match="took this archive job over"):
        first.renew()
    first.release()
    row.refresh_from_db()
    assert row.archive_lease_until == second.until  # not cleared by the first


@pytest.mark.parametrize("value", ["bytes=" + "9" * 5000 + "-", "bytes=٣-", "bytes=1-2,5-6"])
def test_odd_ranges_get_the_whole_file_never_an_error(alice_client, sandbox, value):
    task_id = track_new_task(alice_client, sandbox)
    run_worker()
    response = alice_client.get(f"/mj/image/{task_id}/thumb", headers={"Range": value})
    assert response.status_code == 200
