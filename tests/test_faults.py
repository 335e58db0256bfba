"""The gateway misbehaves in every way we know of. Each time the page still renders, says
what is wrong in a short human line, keeps the last known state, loses no task, and the row
comes back to life once the fault clears."""

from __future__ import annotations

import time

import pytest

from tests.conftest import track_new_task, wait_until
from tracker.models import TrackedTask

pytestmark = pytest.mark.django_db
POLL = {"HX-Request": "true"}

LIST_FAULTS = {
    "latency": ({"seconds": 2}, "did not answer in time"),
    "drip": ({"seconds": 0.3}, "answering too slowly"),
    "status-500": ({"kind": "status", "status": 500}, "having trouble (HTTP 500)"),
    "status-502": ({"kind": "status", "status": 502, "body": "<html>502</html>"}, "HTTP 502"),
    "rate_limit": ({"retry_after": 30}, "rate limiting"),
    "overload": ({}, "having trouble (HTTP 503)"),
    "garbage": ({}, "unreadable answer"),
    "truncated": ({}, "dropped the connection"),
    "reset": ({}, "The gateway reset the connection"),
    "html": ({}, "web page, not the Midjourney API"),
}


@pytest.fixture
def running(alice_client, alice, sandbox, settings):
    """A task seen once mid-way, then left to finish at the gateway while faults happen."""
    settings.MJDASH_GATEWAY_TIMEOUT = 1
    settings.MJDASH_BREAKER_FAILURES = 1000  # the breaker has its own test
    task_id = track_new_task(alice_client, sandbox, step_seconds=0.4, age_seconds=0.9)
    row = TrackedTask.objects.get(user=alice, task_id=task_id)
    assert row.status in ("SUBMITTED", "IN_PROGRESS")
    return row


@pytest.mark.parametrize("name", LIST_FAULTS)
def test_a_list_fault_is_survived_and_recovered_from(alice_client, alice, sandbox, running, name):
    params, message = LIST_FAULTS[name]
    params = dict(params)
    sandbox.fault("list_by_condition", params.pop("kind", name.split("-")[0]), **params)

    response = alice_client.get("/tasks/list/", headers=POLL)
    assert response.status_code == 200
    body = response.content.decode()
    assert message in body, body[:2000]
    assert "Showing the last known state." in body
    row = TrackedTask.objects.get(pk=running.pk)
    assert (row.status, row.progress) == (running.status, running.progress)
    assert message in row.last_error

    sandbox.clear_faults()
    done = wait_until(
        lambda: alice_client.get("/tasks/list/", headers=POLL).status_code == 286, timeout=10
    )
    assert done
    row.refresh_from_db()
    assert (row.status, row.last_error) == ("SUCCESS", "")
    assert TrackedTask.objects.filter(user=alice).count() == 1


def test_a_short_latency_only_slows_the_answer(alice_client, alice, sandbox, running):
    sandbox.fault("list_by_condition", "latency", seconds=0.2)
    response = alice_client.get("/tasks/list/", headers=POLL)
    assert "⚠" not in response.content.decode()


@pytest.mark.parametrize(
    "kind, params, waited",
    [("status", {"status": 502}, 0.0), ("rate_limit", {"retry_after": 0.5}, 0.5)],
    ids=["5xx", "429-retry-after"],
)
def test_a_one_off_transient_failure_is_retried_inside_the_call(
    alice_client, sandbox, running, kind, params, waited
):
    sandbox.fault("list_by_condition", kind, times=1, **params)
    sandbox.reset_stats()
    started = time.monotonic()
    alice_client.get("/tasks/list/", headers=POLL)
    assert time.monotonic() - started >= waited  # a 429's Retry-After is waited out
    assert sandbox.stats()["list_by_condition"] == 2
    assert TrackedTask.objects.get(pk=running.pk).last_error == ""


def test_a_permanent_error_is_never_retried(alice_client, alice, sandbox, running):
    sandbox.fault("list_by_condition", "html")
    sandbox.reset_stats()
    alice_client.get("/tasks/list/", headers=POLL)
    assert sandbox.stats()["list_by_condition"] == 1


def test_duplicate_rows_keep_the_most_advanced_state(alice_client, alice, sandbox, settings):
    sandbox.fault("list_by_condition", "duplicates")
    task_id = track_new_task(alice_client, sandbox, step_seconds=0)
    row = TrackedTask.objects.get(user=alice, task_id=task_id)
    assert (row.status, row.progress) == ("SUCCESS", "100%")


def test_rows_in_any_order_are_matched_by_id(alice_client, alice, sandbox):
    sandbox.fault("list_by_condition", "shuffle")
    first = sandbox.create_task(prompt="first", step_seconds=0)["id"]
    second = sandbox.create_task(prompt="second", step_seconds=0)["id"]
    alice_client.post("/", {"ids": f"{first} {second}"})
    prompts = dict(TrackedTask.objects.filter(user=alice).values_list("task_id", "prompt"))
    assert prompts == {first: "first", second: "second"}


IMAGE_FAULTS = {
    "expired-404": ("expired", {"status": 404}, 404, "no longer available upstream"),
    "expired-403": ("expired", {"status": 403}, 404, "no longer available upstream"),
    "html": ("html", {}, 502, "text/html that is not a picture or a video"),
    "redirect": ("redirect", {}, 502, "not an allowed image host"),
    "status-500": ("status", {"status": 500}, 502, "HTTP 500"),
    "reset": ("reset", {}, 502, "The gateway reset the connection."),
}


@pytest.mark.parametrize("name", IMAGE_FAULTS)
def test_an_image_fault_is_a_clear_page_not_a_crash(alice_client, sandbox, name):
    kind, params, status, message = IMAGE_FAULTS[name]
    task_id = track_new_task(alice_client, sandbox)
    sandbox.fault("image", kind, **params)
    page = alice_client.get(f"/mj/image/{task_id}")
    assert page.status_code == status
    assert message in page.content.decode()
    placeholder = alice_client.get(f"/mj/image/{task_id}?thumb=1")
    assert placeholder["Content-Type"] == "image/svg+xml"
    sandbox.clear_faults()
    recovered = alice_client.get(f"/mj/image/{task_id}")
    assert recovered["Content-Type"] == "image/png"
    b"".join(recovered.streaming_content)


def test_an_oversized_image_is_cut_off(alice_client, sandbox, settings):
    settings.MJDASH_IMAGE_MAX_BYTES = 5 * 1024 * 1024
    task_id = track_new_task(alice_client, sandbox)
    sandbox.fault("image", "oversized", mb=20)
    thumb = alice_client.get(f"/mj/image/{task_id}?thumb=1")
    assert thumb["Content-Type"] == "image/svg+xml"
    response = alice_client.get(f"/mj/image/{task_id}")
    with pytest.raises(Exception, match="larger than this site allows"):
        b"".join(response.streaming_content)


@pytest.mark.parametrize("kind", ["garbage", "overload", "reset"])
def test_a_seed_fault_is_a_human_line(alice_client, sandbox, kind):
    task_id = track_new_task(alice_client, sandbox)
    sandbox.fault("image_seed", kind)
    response = alice_client.get(f"/tasks/{task_id}/seed/", headers=POLL)
    assert response.status_code == 200
    assert 'class="row-error"' in response.content.decode()
    assert "Try again" in response.content.decode()


def test_a_recheck_fault_keeps_the_task(alice_client, alice, sandbox):
    task_id = track_new_task(alice_client, sandbox)
    sandbox.fault("fetch", "garbage")
    response = alice_client.post(f"/tasks/{task_id}/recheck/", follow=True)
    assert b"unreadable answer" in response.content
    assert TrackedTask.objects.get(user=alice).status == "SUCCESS"
