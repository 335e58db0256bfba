"""Alice pastes task IDs on her dashboard and sees what was added, known or rejected."""

from __future__ import annotations

import json

import pytest

from tests.conftest import BOB_TOKEN
from tracker.models import TrackedTask

pytestmark = pytest.mark.django_db


def test_it_requires_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_new_user_sees_an_empty_state(alice_client):
    response = alice_client.get("/")
    assert response.status_code == 200
    assert b"No tasks yet." in response.content


def test_pasting_ids_tracks_them_and_asks_upstream_at_once(alice_client, alice, sandbox):
    done = sandbox.create_task(prompt="a red fox")
    running = sandbox.create_task(step_seconds=60)
    response = alice_client.post("/", {"ids": f"{done['id']}\n{running['id']}"}, follow=True)
    assert b"2 added, 0 already tracked, 0 rejected." in response.content
    rows = {t.task_id: t for t in TrackedTask.objects.filter(user=alice)}
    assert rows[done["id"]].status == "SUCCESS"
    assert rows[done["id"]].prompt == "a red fox"
    assert rows[running["id"]].status == ""
    assert rows[running["id"]].last_checked_at is not None


def test_the_htmx_paste_returns_the_panel_and_the_list(alice_client, sandbox):
    task = sandbox.create_task()
    submit = json.dumps({"code": 1, "description": "提交成功", "result": task["id"]})
    response = alice_client.post(
        "/", {"ids": f"{submit}\n{task['id']} nonsense"}, headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert 'id="paste-panel"' in body
    assert 'id="task-list"' in body and 'hx-swap-oob="true"' in body
    assert "<strong>1</strong> added" in body
    assert "<code>nonsense</code>" in body


def test_known_ids_are_counted_as_already_tracked(alice_client, sandbox):
    task = sandbox.create_task()
    alice_client.post("/", {"ids": task["id"]})
    response = alice_client.post("/", {"ids": f"{task['id']}, {task['id']}"}, follow=True)
    assert b"0 added, 1 already tracked, 0 rejected." in response.content


def test_rejected_tokens_are_listed_with_a_reason_and_nothing_is_lost(alice_client, alice):
    response = alice_client.post("/", {"ids": "hello 123"}, follow=True)
    text = response.content.decode()
    assert "Rejected “hello”: task IDs are 10 to 32 digits" in text
    assert "Rejected “123”: 3 digits is too short for a task ID" in text
    assert TrackedTask.objects.filter(user=alice).count() == 0


def test_an_empty_paste_says_so(alice_client):
    response = alice_client.post("/", {"ids": ""}, headers={"HX-Request": "true"})
    assert b"Paste at least one task ID." in response.content


def test_an_id_the_upstream_does_not_know_is_marked_and_not_polled(alice_client, alice):
    alice_client.post("/", {"ids": "1700000000000999"})
    task = TrackedTask.objects.get(user=alice)
    assert task.missing_at_gateway and task.finished
    assert b"Not found at the gateway" in alice_client.get("/").content


def test_pasting_while_the_gateway_is_down_keeps_the_ids(alice_client, alice, settings):
    settings.MJDASH_GATEWAY_URL = "http://127.0.0.1:9"
    response = alice_client.post("/", {"ids": "1712158011464906"}, follow=True)
    assert response.status_code == 200
    task = TrackedTask.objects.get(user=alice)
    assert "unreachable" in task.last_error
    assert b"The gateway is unreachable" in response.content


def test_two_users_track_the_same_id_separately(alice_client, bob_client, alice, bob, sandbox):
    theirs = sandbox.create_task(token=BOB_TOKEN, prompt="bob's own")
    bob_client.post("/", {"ids": theirs["id"]})
    alice_client.post("/", {"ids": theirs["id"]})
    assert TrackedTask.objects.get(user=bob).prompt == "bob's own"
    # new-api hides bob's task from alice's token: for her it does not exist
    assert TrackedTask.objects.get(user=alice).missing_at_gateway
    assert b"bob&#x27;s own" not in alice_client.get("/").content
