"""Tasks finish while nobody watches: the worker (`manage.py worker`) keeps every tracked
task current with no browser open, archives what finishes, and never asks the gateway about
a task twice in one interval, however many workers run. Pages leave the asking to it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.conftest import ALICE_TOKEN, ROOT, database_url, wait_until
from tracker import gateway, heartbeat
from tracker.models import Gateway, TrackedTask, WorkerBeat

POLL = {"HX-Request": "true"}


def start_worker(sandbox, **env: str) -> subprocess.Popen:
    """`python manage.py worker` against the test database and the sandbox, as a deployment
    runs it (its own process, its own queue worker beside it)."""
    archive = settings.STORAGES["archive"]["OPTIONS"]
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(),
        "MJDASH_GATEWAY_URL": sandbox.url,
        "MJDASH_GATEWAY_TOKEN": ALICE_TOKEN,
        "MJDASH_IMAGE_HOSTS": ",".join(settings.MJDASH_IMAGE_HOSTS),
        "MJDASH_ARCHIVE_OPTIONS": json.dumps(archive),
        "MJDASH_REFRESH_SECONDS": "1",
        "MJDASH_WORKER_BEAT_SECONDS": "1",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "worker", "--tick", "0.2"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: the test can end it and its child
    )


def stop(worker: subprocess.Popen, sig=signal.SIGTERM) -> int:
    if worker.poll() is None:
        os.killpg(worker.pid, sig)
    try:
        return worker.wait(timeout=40)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)


@pytest.fixture
def workers(sandbox):
    started = []

    def start(**env) -> subprocess.Popen:
        started.append(start_worker(sandbox, **env))
        return started[-1]

    yield start
    for worker in started:
        stop(worker, signal.SIGKILL)


def asked_times(sandbox) -> dict[str, list[float]]:
    times = defaultdict(list)
    for call in sandbox.asked():
        for task_id in call["ids"]:
            times[task_id].append(call["at"])
    return times


@pytest.mark.django_db(transaction=True)
def test_a_task_tracked_and_left_alone_reaches_success_and_is_archived(
    alice_client, sandbox, workers
):
    task = sandbox.create_task(step_seconds=0.4, prompt="finished overnight")
    alice_client.post("/", {"ids": task["id"]})  # the last request anyone makes to mjdash
    row = TrackedTask.objects.get(task_id=task["id"])
    assert not row.is_done

    worker = workers()
    done = wait_until(
        lambda: TrackedTask.objects.filter(pk=row.pk, archived_at__isnull=False).first(),
        timeout=45,
        every=0.3,
    )
    assert done.status == "SUCCESS" and done.files.count() == 5  # the grid and its quadrants
    assert WorkerBeat.objects.exists()  # it says it is alive, so pages only read

    assert stop(worker) == 0, worker.stderr.read().decode()[-2000:]  # SIGTERM: a clean stop
    assert not WorkerBeat.objects.exists()  # and pages take the asking back at once


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_cycle_loses_nothing_and_the_next_one_picks_up(
    alice_client, alice, sandbox, workers
):
    ids = [sandbox.create_task(step_seconds=0.5)["id"] for _ in range(3)]
    alice_client.post("/", {"ids": "\n".join(ids)})
    sandbox.fault("list_by_condition", "latency", seconds=30, times=1)  # a gateway that hangs
    first = workers(MJDASH_REFRESH_LEASE_SECONDS="4")
    site = Gateway.site_default()
    wait_until(lambda: Gateway.objects.get(pk=site.pk).refresh_holder, timeout=20)
    stop(first, signal.SIGKILL)  # killed in the middle of its cycle, holding the gateway
    killed_at = time.time()

    second = workers(MJDASH_REFRESH_LEASE_SECONDS="4")
    wait_until(
        lambda: TrackedTask.objects.filter(task_id__in=ids, status="SUCCESS").count() == 3,
        timeout=45,
        every=0.3,
    )
    assert TrackedTask.objects.filter(user=alice).count() == 3  # nothing lost
    answered = [call for call in sandbox.asked() if call["at"] > killed_at]
    assert answered and answered[0]["at"] >= killed_at  # the second worker asked afresh
    assert stop(second) == 0


@pytest.mark.django_db(transaction=True)
def test_with_two_workers_no_task_is_refreshed_twice_in_one_interval(
    alice_client, sandbox, workers
):
    ids = [sandbox.create_task(step_seconds=0.8)["id"] for _ in range(20)]
    alice_client.post("/", {"ids": "\n".join(ids)})
    sandbox.reset_stats()
    pair = [workers(), workers()]
    wait_until(lambda: WorkerBeat.objects.count() == 2, timeout=20)
    wait_until(
        lambda: TrackedTask.objects.filter(task_id__in=ids, status="SUCCESS").count() == 20,
        timeout=60,
        every=0.3,
    )
    times = asked_times(sandbox)
    assert set(ids) <= set(times)
    for task_id in ids:
        gaps = [b - a for a, b in zip(times[task_id], times[task_id][1:], strict=False)]
        assert len(times[task_id]) >= 2 and min(gaps) >= 0.8, (task_id, gaps)
    assert [stop(worker) for worker in pair] == [0, 0]


def test_while_a_worker_runs_a_poll_only_reads_the_database(alice_client, sandbox):
    task = sandbox.create_task(step_seconds=60)
    alice_client.post("/", {"ids": task["id"]})
    sandbox.reset_stats()
    heartbeat.beat("another-host:123")
    for _ in range(3):
        Gateway.objects.update(refresh_due_at=None)
        assert alice_client.get("/tasks/list/", headers=POLL).status_code == 200
        alice_client.get(f"/tasks/{task['id']}/?poll=1", headers=POLL)
    assert sandbox.stats() == {}

    WorkerBeat.objects.update(beat_at=timezone.now() - timedelta(minutes=1))  # it died
    alice_client.get("/tasks/list/", headers=POLL)
    assert sandbox.stats()["list_by_condition"] == 1  # pages take over


def test_the_slow_lane_is_asked_less_often_than_moving_tasks(alice, alice_client, sandbox):
    queued = sandbox.create_task(step_seconds=600)  # sits in the queue for ten minutes
    moving = sandbox.create_task(step_seconds=600)
    alice_client.post("/", {"ids": f"{queued['id']}\n{moving['id']}"})
    long_ago = timezone.now() - timedelta(seconds=settings.MJDASH_SLOW_AFTER_SECONDS + 5)
    TrackedTask.objects.filter(task_id=queued["id"]).update(progress_changed_at=long_ago)
    site = Gateway.site_default()
    Gateway.objects.update(refresh_due_at=None, slow_asked_at=timezone.now())
    sandbox.reset_stats()

    assert gateway.refresh_if_due(site.pk)
    assert [call["ids"] for call in sandbox.asked()] == [[moving["id"]]]

    slow_due = timezone.now() - timedelta(seconds=settings.MJDASH_SLOW_REFRESH_SECONDS + 1)
    Gateway.objects.update(refresh_due_at=None, slow_asked_at=slow_due)
    assert gateway.refresh_if_due(site.pk)
    assert sorted(sandbox.asked()[-1]["ids"]) == sorted([queued["id"], moving["id"]])
    assert Gateway.objects.get(pk=site.pk).slow_asked_at > slow_due


def test_a_gateway_whose_breaker_is_open_is_not_due_until_its_cool_off_ends(alice_client, sandbox):
    task = sandbox.create_task(step_seconds=60)
    alice_client.post("/", {"ids": task["id"]})
    site = Gateway.site_default()
    until = timezone.now() + timedelta(minutes=5)
    Gateway.objects.update(refresh_due_at=None, circuit_open_until=until)
    sandbox.reset_stats()
    assert gateway.refresh_if_due(site.pk)  # its turn: the breaker refuses, nothing is sent
    assert sandbox.stats() == {}
    assert Gateway.objects.get(pk=site.pk).refresh_due_at >= until
    assert not gateway.refresh_if_due(site.pk)


def test_a_refresh_writes_only_the_rows_that_changed(alice_client, sandbox):
    waiting = [sandbox.create_task(step_seconds=600)["id"] for _ in range(30)]
    alice_client.post("/", {"ids": "\n".join(waiting)})
    site = Gateway.site_default()

    def task_writes() -> list[str]:
        Gateway.objects.update(refresh_due_at=None)
        with CaptureQueriesContext(connection) as queries:
            assert gateway.refresh_if_due(site.pk)
        # (a batch of row updates is logged as "<n> times: UPDATE ...")
        return [q["sql"] for q in queries if 'UPDATE "tracker_trackedtask"' in q["sql"]]

    assert task_writes() == []  # nothing moved: nothing written
    moved = sandbox.create_task(step_seconds=0)  # done at once
    alice_client.post("/", {"ids": moved["id"]})
    row = TrackedTask.objects.get(task_id=moved["id"])
    TrackedTask.objects.filter(pk=row.pk).update(status="IN_PROGRESS", state_hash="")
    states = [sql for sql in task_writes() if '"state_hash"' in sql]
    assert len(states) == 1 and states[0].startswith("1 times: UPDATE")  # that row alone
    assert TrackedTask.objects.get(pk=row.pk).status == "SUCCESS"
    assert TrackedTask.objects.filter(task_id__in=waiting, status="SUCCESS").count() == 0


def test_refresh_tasks_once_refreshes_every_due_gateway(alice_client, sandbox):
    from django.core.management import call_command

    task = sandbox.create_task(step_seconds=0)
    alice_client.post("/", {"ids": task["id"]})
    TrackedTask.objects.update(status="IN_PROGRESS", state_hash="")
    Gateway.objects.update(refresh_due_at=None)
    call_command("refresh_tasks", "--once", verbosity=0)
    assert TrackedTask.objects.get(task_id=task["id"]).status == "SUCCESS"


@pytest.mark.django_db(transaction=True)
def test_a_slow_gateway_never_holds_back_the_others(alice_client, sandbox, bob, bob_client, stub):
    from tests.conftest import Answer, use_gateway
    from tracker.worker import Loop

    task = sandbox.create_task(step_seconds=60)
    alice_client.post("/", {"ids": task["id"]})
    stub.answer("/mj/task/list-by-condition", Answer(body=[b"[", b"]"], pause=4))
    use_gateway(bob, stub.url, "sk-bob-on-a-slow-gateway-000000000000000000")
    TrackedTask.objects.create(
        user=bob, gateway=Gateway.objects.get(base_url=stub.url), task_id="1"
    )
    Gateway.objects.update(refresh_due_at=None)
    sandbox.reset_stats()

    loop = Loop(tick=0.1)
    runner = threading.Thread(target=loop.run)
    runner.start()
    try:
        time.sleep(3)  # the slow gateway's answer is still on its way
        assert len(stub.requests) == 1
        assert len(sandbox.asked()) >= 3  # alice's gateway was asked every interval all along
    finally:
        loop.stop()
        runner.join(timeout=15)
    assert not runner.is_alive()
