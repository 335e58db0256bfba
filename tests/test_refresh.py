"""The refresh: one claim per gateway per interval, one batched call for everyone, and the
answers merged into every row that may hold them."""

from __future__ import annotations

import pytest

from tests.conftest import BOB_TOKEN, use_gateway, wait_until
from tracker.models import Gateway, TrackedTask

pytestmark = pytest.mark.django_db
POLL = {"HX-Request": "true"}


def test_one_upstream_call_per_interval_however_many_polls(
    alice_client, bob_client, settings, sandbox
):
    settings.MJDASH_REFRESH_SECONDS = 60
    ids = [sandbox.create_task(step_seconds=60)["id"] for _ in range(30)]
    alice_client.post("/", {"ids": "\n".join(ids)})
    Gateway.objects.update(refresh_due_at=None)
    sandbox.reset_stats()
    for _ in range(3):  # three tabs, several polls each
        for _ in range(3):
            assert alice_client.get("/tasks/list/", headers=POLL).status_code == 200
    assert sandbox.stats() == {"list_by_condition": 1, "list_ids": 30}


def test_finished_tasks_are_never_asked_about_again(alice_client, sandbox):
    task = sandbox.create_task()
    alice_client.post("/", {"ids": task["id"]})
    sandbox.reset_stats()
    for _ in range(3):
        assert alice_client.get("/tasks/list/", headers=POLL).status_code == 286
    assert sandbox.stats() == {}


def test_the_list_is_chunked_at_the_configured_size(alice_client, settings, sandbox):
    settings.MJDASH_LIST_CHUNK = 10
    ids = [sandbox.create_task(step_seconds=60)["id"] for _ in range(25)]
    sandbox.reset_stats()
    alice_client.post("/", {"ids": "\n".join(ids)})
    assert sandbox.stats() == {"list_by_condition": 3, "list_ids": 25}


def test_a_refresh_updates_every_users_rows_with_one_call(alice_client, alice, sandbox, db):
    from django.contrib.auth import get_user_model
    from django.test import Client

    carol = get_user_model().objects.create_user("carol")
    for user in (alice, carol):  # both hold the same personal token: the gateway's to decide
        use_gateway(user, sandbox.url, BOB_TOKEN)
    carol_client = Client()
    carol_client.force_login(carol)
    task = sandbox.create_task(token=BOB_TOKEN, step_seconds=0.2)
    alice_client.post("/", {"ids": task["id"]})
    carol_client.post("/", {"ids": task["id"]})
    wait_until(lambda: alice_client.get("/tasks/list/", headers=POLL).status_code == 286)
    assert TrackedTask.objects.get(user=carol).status == "SUCCESS"


def test_two_users_on_one_token_share_one_call_and_two_tokens_never_share(
    alice_client, bob_client, bob, settings, sandbox
):
    from django.contrib.auth import get_user_model
    from django.test import Client

    settings.MJDASH_REFRESH_SECONDS = 60
    carol = get_user_model().objects.create_user("carol")  # alice's gateway token too
    carol_client = Client()
    carol_client.force_login(carol)
    alice_task = sandbox.create_task(step_seconds=60, age_seconds=61)["id"]
    bob_task = sandbox.create_task(token=BOB_TOKEN, step_seconds=60, age_seconds=61)["id"]
    alice_client.post("/", {"ids": alice_task})
    carol_client.post("/", {"ids": alice_task})
    bob_client.post("/", {"ids": bob_task})
    Gateway.objects.update(refresh_due_at=None)
    sandbox.reset_stats()
    for client in (alice_client, carol_client, bob_client) * 3:
        client.get("/tasks/list/", headers=POLL)
    assert sandbox.stats() == {"list_by_condition": 2, "list_ids": 2}
    assert TrackedTask.objects.get(user=bob).status == "SUBMITTED"


def test_a_task_the_gateway_forgets_keeps_its_last_state(alice_client, alice, sandbox):
    task = sandbox.create_task(step_seconds=60, age_seconds=61, prompt="remember me")
    alice_client.post("/", {"ids": task["id"]})
    Gateway.objects.update(token=BOB_TOKEN)  # as if the gateway lost the task
    body = alice_client.get("/tasks/list/", headers=POLL).content.decode()
    row = TrackedTask.objects.get(user=alice)
    assert row.missing_at_gateway and (row.status, row.prompt) == ("SUBMITTED", "remember me")
    assert "No longer known to the gateway" in body and "remember me" in body


def test_one_claim_per_interval_whoever_asks(alice, sandbox, settings):
    """The conditional UPDATE lets exactly one caller win, with or without a cache."""
    from tracker import refresh

    settings.MJDASH_REFRESH_SECONDS = 60
    gateway = Gateway.site_default()
    holders = [refresh.claim(gateway.pk) for _ in range(5)]
    assert holders[0] and holders[1:] == ["", "", "", ""]
