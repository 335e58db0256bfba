"""Benchmark the poll path against the sandbox gateway and print the figures.

    bin/bench            (or: .venv/bin/python bench/poll_bench.py)

It measures, in one run:
1. upstream calls per refresh interval with 200 tracked tasks (150 unfinished) and 5 tabs
   polling, against the naive count (one fetch per task per tab per poll);
2. the poll view's server time relative to one bare list-by-condition round trip;
3. the database queries per poll, for 10 and for 200 tasks;
4. the memory an image takes while it streams through /mj/image;
and checks each against its target. Exit status 1 when a target is missed.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox_process import TOKEN, with_sandbox  # noqa: E402

INTERVAL = 2.0  # MJDASH_REFRESH_SECONDS for the run (the default is 5: same ratios)
POLL_EVERY = 1.2  # each tab's poll period (the default 3 s scaled like the interval)
TABS = 5
INTERVALS = 4
CHUNK = 100
GATEWAY_LATENCY = 0.15  # seconds: a gateway across a real network, not on loopback

data_dir = tempfile.mkdtemp(prefix="mjdash-bench-")
os.environ.update(
    DJANGO_SETTINGS_MODULE="mjdash.settings",
    DEBUG="True",
    MJDASH_DATA_DIR=data_dir,
    MJDASH_REFRESH_SECONDS=str(int(INTERVAL)),
    MJDASH_LIST_CHUNK=str(CHUNK),
    LOG_LEVEL="WARNING",
)


def main() -> int:
    return with_sandbox(data_dir, run)


def run(url: str) -> int:
    from harness import setup_django

    setup_django()
    import httpx
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from tracker.gateway import track
    from tracker.models import Gateway, TrackedTask

    def make_tasks(n: int, finished: bool, token: str = TOKEN) -> list[str]:
        body = {"token": token, "step_seconds": 0 if finished else 3600, "age_seconds": 3700}
        return [httpx.post(f"{url}/_sandbox/tasks", json=body).json()["id"] for _ in range(n)]

    def stats() -> dict:
        return httpx.get(f"{url}/_sandbox/stats").json()

    def reset() -> None:
        httpx.post(f"{url}/_sandbox/stats/reset")

    users = get_user_model().objects
    big, small = users.create_user("big"), users.create_user("small")
    unfinished = make_tasks(150, finished=False)
    track(big, "\n".join(unfinished + make_tasks(50, finished=True)))
    small_ids = make_tasks(5, False) + make_tasks(5, True)  # the same shared gateway as big
    track(small, "\n".join(small_ids))
    assert TrackedTask.objects.filter(user=big).count() == 200

    def tab(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    headers = {"HX-Request": "true"}
    failures = []

    # 1. Upstream calls per interval, 5 tabs polling --------------------------------------
    tabs = [tab(big) for _ in range(TABS)]
    polls = []
    Gateway.objects.update(refresh_due_at=None)
    reset()
    stop = time.monotonic() + INTERVAL * INTERVALS

    def poll_loop(client: Client) -> None:
        while time.monotonic() < stop:
            assert client.get("/tasks/list/", headers=headers).status_code in (200, 286)
            polls.append(1)
            time.sleep(POLL_EVERY)

    threads = [threading.Thread(target=poll_loop, args=(c,)) for c in tabs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    calls = stats().get("list_by_condition", 0)
    per_interval = calls / INTERVALS
    polls_per_interval = len(polls) / INTERVALS
    naive = 200 * polls_per_interval  # one fetch per task, per tab, per poll
    target_calls = math.ceil(150 / CHUNK)
    print("1. upstream calls per refresh interval (200 tracked, 150 unfinished, 5 tabs)")
    print(f"   polls per interval:        {polls_per_interval:.1f}")
    print(f"   mjdash:                    {per_interval:.1f} list-by-condition calls")
    print(f"   naive (task x tab x poll): {naive:.0f} fetch calls")
    print(f"   target:                    <= {target_calls} (ceil(150/{CHUNK}))")
    if per_interval > target_calls:
        failures.append("calls per interval")

    # 2. Poll time against one bare list-by-condition round trip ----------------------------
    print("2. poll view server time (medians of 7)")
    loopback = poll_times(url, unfinished, tab(big), headers)
    print(
        f"   loopback sandbox (no network): bare round trip {loopback[0] * 1000:.1f} ms, "
        f"refreshing poll {loopback[1] * 1000:.1f} ms, reading poll {loopback[2] * 1000:.1f} ms"
    )
    httpx.post(
        f"{url}/_sandbox/faults",
        json={"endpoint": "list_by_condition", "kind": "latency", "seconds": GATEWAY_LATENCY},
    )
    rtt, worst, read = poll_times(url, unfinished, tab(big), headers)
    httpx.post(f"{url}/_sandbox/faults/clear")
    print(f"   with a gateway {GATEWAY_LATENCY * 1000:.0f} ms away (a real network):")
    print(f"   bare list-by-condition, 150 ids: {rtt * 1000:7.1f} ms")
    print(f"   poll that refreshes (150 ids):   {worst * 1000:7.1f} ms = {worst / rtt:.2f}x")
    print(f"   poll that only reads:            {read * 1000:7.1f} ms = {read / rtt:.2f}x")
    print("   target:                          <= 1.5x the bare round trip")
    if worst > 1.5 * rtt:
        failures.append("poll time")

    # 3. Queries per poll, 10 and 200 tasks -------------------------------------------------
    def queries(user, due: bool) -> int:
        Gateway.objects.update(refresh_due_at=None if due else "2999-01-01T00:00Z")
        client = tab(user)
        with CaptureQueriesContext(connection) as captured:
            client.get("/tasks/list/", headers=headers)
        return len(captured)

    print("3. database queries per poll")
    for due in (False, True):
        q10, q200 = queries(small, due), queries(big, due)
        kind = "refreshing" if due else "reading   "
        print(f"   {kind}: 10 tasks -> {q10}, 200 tasks -> {q200} (target: equal)")
        if q10 != q200:
            failures.append(f"queries ({kind.strip()})")

    # 4. Memory: an image passes through the proxy without being held whole ----------------
    import tracemalloc

    image_id = make_tasks(1, finished=True)[0]
    track(big, image_id)
    client = tab(big)
    size, peaks = 0, []
    for _ in range(3):
        tracemalloc.start()
        response = client.get(f"/mj/image/{image_id}")
        size = sum(len(chunk) for chunk in response.streaming_content)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    peak = min(peaks)  # the first pass also pays for imports and the connection
    print("4. memory while streaming one image through /mj/image (tracemalloc peak)")
    print(f"   image: {size / 1e6:.1f} MB, peak Python memory: {peak / 1e6:.2f} MB")
    print("   target:                          < 1 MB, whatever the image size")
    if peak >= 1_000_000:
        failures.append("streaming memory")

    print("RESULT:", "all targets met" if not failures else "missed: " + ", ".join(failures))
    return 1 if failures else 0


def poll_times(url: str, ids: list[str], client, headers) -> tuple[float, float, float]:
    """Medians of 7: one bare list-by-condition of `ids`, a poll that wins the refresh claim,
    and a poll inside the interval that only reads."""
    from tracker.models import Gateway
    from tracker.upstream import Client as UpstreamClient

    bare, refreshing, reading = [], [], []
    with UpstreamClient(url, TOKEN, allow_private=True) as upstream:  # the local sandbox
        upstream.list_by_condition(ids)  # warm the connection, as the poll's client is
        for _ in range(7):
            started = time.perf_counter()
            upstream.list_by_condition(ids)
            bare.append(time.perf_counter() - started)
    for _ in range(7):
        Gateway.objects.update(refresh_due_at=None)  # this poll wins the claim
        started = time.perf_counter()
        client.get("/tasks/list/", headers=headers)
        refreshing.append(time.perf_counter() - started)
        started = time.perf_counter()
        client.get("/tasks/list/", headers=headers)  # inside the interval: reads only
        reading.append(time.perf_counter() - started)
    return statistics.median(bare), statistics.median(refreshing), statistics.median(reading)


if __name__ == "__main__":
    sys.exit(main())
