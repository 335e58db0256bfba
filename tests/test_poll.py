"""The task list polls: it reads the database, and the upstream is asked at most once per
interval for everyone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.conftest import wait_until
from tracker.models import Gateway, TrackedTask

pytestmark = pytest.mark.django_db
POLL = {"HX-Request": "true"}


def test_it_requires_login_and_redirects_the_whole_page_for_htmx(client):
    response = client.get("/tasks/list/", headers={**POLL, "HX-Current-URL": "http://testserver/"})
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/accounts/login/?next=%2F"


def test_a_task_polls_to_success_then_polling_stops(alice_client, alice, sandbox):
    task = sandbox.create_task(step_seconds=0.3)
    alice_client.post("/", {"ids": task["id"]})

    def polled_to_done():
        response = alice_client.get("/tasks/list/", headers=POLL)
        return response if response.status_code == 286 else None

    final = wait_until(polled_to_done, timeout=10, every=0.2)
    body = final.content.decode()
    assert "Done" in body and 'value="100"' in body
    assert 'hx-get="/tasks/list/' not in body  # the final list carries no polling
    assert TrackedTask.objects.get(user=alice).status == "SUCCESS"


def test_while_tasks_run_the_list_keeps_polling(alice_client, sandbox):
    task = sandbox.create_task(step_seconds=60)
    alice_client.post("/", {"ids": task["id"]})
    response = alice_client.get("/tasks/list/", headers=POLL)
    assert response.status_code == 200
    assert 'hx-trigger="every 3s, poll-now"' in response.content.decode()


@pytest.mark.parametrize("refresh_due", [True, False], ids=["refreshing", "reading"])
def test_the_query_count_is_the_same_for_1_and_for_50_tasks(
    alice_client, alice, sandbox, refresh_due
):
    def poll_queries() -> int:
        due_at = None if refresh_due else timezone.now() + timedelta(hours=1)
        Gateway.objects.update(refresh_due_at=due_at)
        with CaptureQueriesContext(connection) as queries:
            assert alice_client.get("/tasks/list/", headers=POLL).status_code == 200
        return len(queries)

    ids = [sandbox.create_task(step_seconds=60)["id"] for _ in range(50)]
    alice_client.post("/", {"ids": ids[0]})
    one = poll_queries()
    alice_client.post("/", {"ids": "\n".join(ids[1:])})
    assert TrackedTask.objects.filter(user=alice).count() == 50
    assert poll_queries() == one


def test_when_the_gateway_goes_down_the_list_shows_why_and_keeps_the_last_state(
    alice_client, alice, sandbox, settings
):
    task = sandbox.create_task(step_seconds=60)
    alice_client.post("/", {"ids": task["id"]})
    settings.MJDASH_GATEWAY_URL = "http://127.0.0.1:9"  # the site's gateway moved and is down
    Gateway.objects.update(base_url="http://127.0.0.1:9")
    response = alice_client.get("/tasks/list/", headers=POLL)
    assert response.status_code == 200
    body = response.content.decode()
    assert "The gateway is unreachable" in body and "Showing the last known state." in body
    assert TrackedTask.objects.filter(user=alice, task_id=task["id"]).exists()
    settings.MJDASH_GATEWAY_URL = sandbox.url
    Gateway.objects.update(base_url=sandbox.url)
    response = alice_client.get("/tasks/list/", headers=POLL)
    assert "unreachable" not in response.content.decode()


def test_a_stranger_never_sees_alices_rows(alice_client, bob_client, sandbox):
    task = sandbox.create_task(prompt="alice's secret prompt")
    alice_client.post("/", {"ids": task["id"]})
    response = bob_client.get("/tasks/list/", headers=POLL)
    assert task["id"].encode() not in response.content


def test_a_stale_task_gets_a_badge_and_a_recheck_and_stops_the_spinning(
    alice_client, alice, sandbox
):
    task = sandbox.create_task(step_seconds=3600, age_seconds=3700)  # SUBMITTED for an hour
    alice_client.post("/", {"ids": task["id"]})
    TrackedTask.objects.update(progress_changed_at=timezone.now() - timedelta(minutes=11))
    response = alice_client.get("/tasks/list/", headers=POLL)
    body = response.content.decode()
    assert response.status_code == 286  # nothing live on screen: no polling for ever
    assert "Stale · no change since" in body and "Re-check now" in body
    sandbox.reset_stats()
    page = alice_client.post(
        f"/tasks/{task['id']}/recheck/", {"next": "/"}, follow=True
    ).content.decode()
    assert sandbox.stats()["fetch"] == 1  # (the dashboard it returns to may refresh too)
    assert "Stale · no change since" in page  # asked again, still no change


def test_a_poll_that_has_not_changed_is_not_sent_again(alice_client, alice, sandbox):
    task = sandbox.create_task(step_seconds=600)  # sits in the queue
    alice_client.post("/", {"ids": task["id"]})
    first = alice_client.get("/tasks/list/", headers=POLL)
    assert first.status_code == 200 and first["ETag"]
    assert "private" in first["Cache-Control"] and "no-cache" in first["Cache-Control"]

    again = alice_client.get("/tasks/list/", headers={**POLL, "If-None-Match": first["ETag"]})
    assert again.status_code == 304 and again.content == b""  # the browser keeps its copy

    TrackedTask.objects.filter(user=alice).update(favourite=True)  # something on screen moved
    moved = alice_client.get("/tasks/list/", headers={**POLL, "If-None-Match": first["ETag"]})
    assert moved.status_code == 200 and "★" in moved.content.decode()
    assert moved["ETag"] != first["ETag"]


def test_the_last_poll_that_stops_polling_is_always_sent_whole(alice_client, alice, sandbox):
    task = sandbox.create_task(step_seconds=0)
    alice_client.post("/", {"ids": task["id"]})
    first = alice_client.get("/tasks/list/", headers=POLL)
    assert first.status_code == 286 and "ETag" not in first
    again = alice_client.get("/tasks/list/", headers={**POLL, "If-None-Match": '"anything"'})
    assert again.status_code == 286 and b"Done" in again.content
