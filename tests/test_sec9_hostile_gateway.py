"""Security, issue 9 review: what a hostile gateway (one a user points their account at) can
send, and how mjdash holds. Each answer is real HTTP from a stub server on loopback."""

from __future__ import annotations

import json
import socket
import threading
import time
import tracemalloc
import zlib

import pytest

from tests.conftest import Answer, run_worker, use_gateway
from tracker import gateway
from tracker.models import TrackedTask, gateway_for
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


def finished_task(base: str) -> bytes:
    task = {"id": TASK, "status": "SUCCESS", "progress": "100%", "action": "UPSCALE",
            "imageUrl": f"{base}/mj/image/{TASK}"}  # fmt: skip
    return json.dumps([task]).encode()


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
