"""Notifications away from the page: alice sets up a webhook or an e-mail address on Settings,
and hears once about each task that finishes or fails, signed, retried, recorded, and, if she
asks, as one message per batch. The receiver is a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from tests.conftest import (
    Answer,
    drop_queued_jobs,
    make_deferred_jobs_due,
    queued_jobs,
    run_worker,
    track_new_task,
    wait_until,
)
from tracker import notify
from tracker.models import Channel, Notice, TrackedTask

pytestmark = pytest.mark.django_db(transaction=True)
POLL = {"HX-Request": "true"}
SECRET = "whsec-a-long-secret-alice-keeps-4321"
LOCMEM = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}


def watched_until_finished(client, sandbox, **fields) -> TrackedTask:
    """A task alice pastes while it runs and watches on the dashboard until it finishes."""
    task_id = track_new_task(client, sandbox, step_seconds=0.2, **fields)
    assert not TrackedTask.objects.get(task_id=task_id).finished
    wait_until(lambda: client.get("/tasks/list/", headers=POLL).status_code == 286)
    return TrackedTask.objects.get(task_id=task_id)


def add_webhook(client, url: str, secret: str = "", digest: bool = False):
    data = {"webhook-target": url, "webhook-secret": secret}
    if digest:
        data["webhook-digest"] = "on"
    return client.post("/settings/notifications/webhook/", data, follow=True)


def calls(stub) -> list[dict]:
    """What the receiver got: each call's headers (lower-case names) and its JSON."""
    return [
        {"headers": {k.lower(): v for k, v in r["headers"].items()}, "body": r["body"]}
        for r in stub.requests
    ]


def run_retries_now() -> None:
    """The wait before the next try has passed."""
    make_deferred_jobs_due()
    run_worker()


# --- the webhook ---------------------------------------------------------------------------------


def test_a_webhook_fires_once_with_a_signature_the_receiver_can_check(alice_client, sandbox, stub):
    add_webhook(alice_client, f"{stub.url}/hook", SECRET)
    row = watched_until_finished(alice_client, sandbox, prompt="a red fox")
    alice_client.get("/tasks/list/", headers=POLL)
    notify.finished([row.pk])  # a second worker's refresh saw the same finish
    run_worker()
    run_worker()

    [call] = calls(stub)
    assert stub.requests[0]["method"] == "POST" and stub.requests[0]["path"] == "/hook"
    headers, body = call["headers"], call["body"]
    signed = headers["x-mjdash-timestamp"].encode() + b"." + body
    expected = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-mjdash-signature"], f"sha256={expected}")
    assert abs(int(headers["x-mjdash-timestamp"]) - timezone.now().timestamp()) < 60
    sent = json.loads(body)
    assert sent["event"] == "tasks.finished"
    [task] = sent["tasks"]
    assert task["id"] == row.task_id and task["status"] == "SUCCESS"
    assert task["prompt"] == "a red fox" and task["url"] == f"/tasks/{row.task_id}/"
    assert Notice.objects.filter(task=row).count() == 1
    assert not stub.sent(SECRET)


def test_a_failed_task_is_told_too_with_its_reason(alice_client, sandbox, stub):
    add_webhook(alice_client, f"{stub.url}/hook")
    row = watched_until_finished(alice_client, sandbox, outcome="FAILURE")
    run_worker()
    [task] = json.loads(calls(stub)[0]["body"])["tasks"]
    assert task["id"] == row.task_id and task["status"] == "FAILURE" and task["fail_reason"]
    assert "x-mjdash-signature" not in calls(stub)[0]["headers"]  # no secret, no signature


def test_a_task_the_refresh_sees_finish_is_noted_once_with_no_page_asking_twice(
    alice_client, sandbox, stub
):
    add_webhook(alice_client, f"{stub.url}/hook")
    row = watched_until_finished(alice_client, sandbox)
    assert Notice.objects.filter(task=row).count() == 1
    assert queued_jobs("send_notices") == 1


def test_tasks_that_were_finished_when_pasted_are_not_announced(alice_client, sandbox, stub):
    add_webhook(alice_client, f"{stub.url}/hook")
    track_new_task(alice_client, sandbox)  # finished long ago, pasted now
    alice_client.get("/tasks/list/", headers=POLL)
    run_worker()
    assert stub.requests == []


def test_a_failing_receiver_is_tried_again_and_each_outcome_is_shown(alice_client, sandbox, stub):
    stub.answer("/hook", Answer(status=500, body=b"oops"))
    add_webhook(alice_client, f"{stub.url}/hook", SECRET)
    row = watched_until_finished(alice_client, sandbox)
    run_worker()
    assert len(stub.requests) == 1
    channel = Channel.objects.get()
    assert channel.last_outcome == "retrying" and "HTTP 500" in channel.last_error
    page = alice_client.get("/settings/").content.decode()
    assert "Failed; trying again" in page and "HTTP 500" in page

    run_worker()  # the wait has not passed: nothing is sent meanwhile
    assert len(stub.requests) == 1
    stub.answer("/hook", Answer(status=200, body=b"ok"))
    run_retries_now()
    assert len(stub.requests) == 2
    first, second = (json.loads(call["body"]) for call in calls(stub))
    assert first == second and second["tasks"][0]["id"] == row.task_id  # the same message
    channel.refresh_from_db()
    assert channel.last_outcome == "sent" and channel.last_error == ""
    page = alice_client.get("/settings/").content.decode()
    assert "Sent" in page and "HTTP 500" not in page
    run_retries_now()
    assert len(stub.requests) == 2


def test_after_the_last_attempt_it_gives_up_and_says_so(alice_client, sandbox, stub, settings):
    settings.MJDASH_NOTIFY_ATTEMPTS = 2
    stub.answer("/hook", Answer(status=503))
    add_webhook(alice_client, f"{stub.url}/hook")
    watched_until_finished(alice_client, sandbox)
    run_worker()
    run_retries_now()
    run_retries_now()
    assert len(stub.requests) == 2
    page = alice_client.get("/settings/").content.decode()
    assert "Failed" in page and "HTTP 503" in page and "trying again" not in page


def test_a_receiver_that_refuses_or_redirects_is_not_tried_again(alice_client, sandbox, stub):
    stub.answer("/gone", Answer(status=302, headers={"Location": f"{stub.url}/elsewhere"}))
    add_webhook(alice_client, f"{stub.url}/gone")
    watched_until_finished(alice_client, sandbox)
    run_worker()
    run_retries_now()
    assert [r["path"] for r in stub.requests] == ["/gone"]  # the redirect was not followed
    assert "mjdash follows no redirects" in Channel.objects.get().last_error


def test_a_slow_receiver_is_cut_off_at_the_deadline(alice_client, sandbox, stub, settings):
    settings.MJDASH_WEBHOOK_TIMEOUT = 1
    stub.answer("/slow", Answer(body=[b"x"] * 20, pause=0.3, headers={"Content-Length": "20"}))
    add_webhook(alice_client, f"{stub.url}/slow")
    channel = Channel.objects.get()
    started = timezone.now()
    sent, error = notify.send_test(channel)
    assert not sent and "did not answer in time" in error
    assert (timezone.now() - started).total_seconds() < 3


# --- one message per batch -----------------------------------------------------------------------


def test_a_digest_sends_one_message_for_tasks_finishing_together(
    alice_client, sandbox, stub, settings
):
    add_webhook(alice_client, f"{stub.url}/hook", digest=True)
    ids = [sandbox.create_task(step_seconds=0.2, prompt=f"cat {n}")["id"] for n in range(4)]
    alice_client.post("/", {"ids": "\n".join(ids)})
    wait_until(lambda: alice_client.get("/tasks/list/", headers=POLL).status_code == 286)
    run_worker()
    assert stub.requests == []  # the batch window is still open

    run_retries_now()  # the window has closed
    [call] = calls(stub)
    assert sorted(t["id"] for t in json.loads(call["body"])["tasks"]) == sorted(ids)
    run_retries_now()
    assert len(stub.requests) == 1


def test_a_flood_of_finished_tasks_goes_to_a_plain_webhook_as_one_message(
    alice_client, sandbox, stub
):
    add_webhook(alice_client, f"{stub.url}/hook")  # no digest asked for
    ids = [sandbox.create_task(step_seconds=0.2, prompt=f"dog {n}")["id"] for n in range(12)]
    alice_client.post("/", {"ids": "\n".join(ids)})
    wait_until(lambda: alice_client.get("/tasks/list/", headers=POLL).status_code == 286)
    run_worker()
    [call] = calls(stub)
    assert sorted(t["id"] for t in json.loads(call["body"])["tasks"]) == sorted(ids)


# --- e-mail -------------------------------------------------------------------------------------


def test_an_email_reaches_the_outbox_once(alice_client, alice, sandbox, settings):
    settings.MAILERS = LOCMEM
    alice.email = "alice@example.com"
    alice.save()
    page = alice_client.get("/settings/").content.decode()
    assert 'value="alice@example.com"' in page  # her address, ready to add
    alice_client.post("/settings/notifications/email/", {"email-target": "alice@example.com"})
    confirmed(alice_client)
    row = watched_until_finished(alice_client, sandbox, prompt="a lighthouse")
    run_worker()
    run_worker()
    [message] = mail.outbox
    assert message.to == ["alice@example.com"]
    assert message.subject == f"mjdash: task {row.task_id} is done"
    assert "a lighthouse" in message.body and f"/tasks/{row.task_id}/" in message.body
    assert Channel.objects.get().last_outcome == "sent"


def test_an_email_set_up_in_chinese_arrives_in_chinese(alice_client, sandbox, settings):
    settings.MAILERS = LOCMEM
    alice_client.post(
        "/settings/notifications/email/",
        {"email-target": "alice@example.com"},
        HTTP_ACCEPT_LANGUAGE="zh-CN",
    )
    [confirmation] = mail.outbox
    assert re.search(r"[\u4e00-\u9fff]", confirmation.subject)
    confirmed(alice_client)
    row = watched_until_finished(alice_client, sandbox, outcome="FAILURE")
    run_worker()
    [message] = mail.outbox
    assert row.task_id in message.subject and re.search(r"[\u4e00-\u9fff]", message.subject)


def confirmed(client) -> None:
    """Follow the link in the confirmation e-mail, as its owner, logged in; the outbox is then
    left for what comes after."""
    [confirmation] = mail.outbox
    link = re.search(r"https?://\S+|/settings/\S+", confirmation.body).group(0)
    response = client.get(link[link.index("/settings/") :], follow=True)
    assert "Confirmed" in response.content.decode() or "已确认" in response.content.decode()
    mail.outbox.clear()


def test_an_address_gets_nothing_but_its_confirmation_until_its_owner_follows_the_link(
    alice_client, bob_client, alice, sandbox, settings
):
    settings.MAILERS = LOCMEM
    alice_client.post("/settings/notifications/email/", {"email-target": "someone@example.org"})
    [confirmation] = mail.outbox
    assert confirmation.to == ["someone@example.org"] and "/confirm/" in confirmation.body
    assert "Waiting for you to confirm" in alice_client.get("/settings/").content.decode()
    watched_until_finished(alice_client, sandbox, prompt="not for a stranger's inbox")
    run_worker()
    assert len(mail.outbox) == 1  # the confirmation alone

    link = re.search(r"/settings/notifications/\d+/confirm/\S+", confirmation.body).group(0)
    assert bob_client.get(link).status_code == 404  # only its owner can confirm it
    forged = link.rsplit("/confirm/", 1)[0] + "/confirm/forged:token/"
    alice_client.get(forged)
    assert Channel.objects.get().confirmed_at is None
    alice_client.get(link)
    assert Channel.objects.get().confirmed_at is not None


def test_tests_and_confirmations_are_a_few_an_hour(alice_client, settings, stub):
    from tracker import notify

    add_webhook(alice_client, f"{stub.url}/hook", SECRET)
    channel = Channel.objects.get()
    answers = [
        alice_client.post(
            f"/settings/notifications/{channel.pk}/test/", headers={"HX-Request": "true"}
        )
        for _ in range(notify.SENDS_PER_HOUR + 2)
    ]
    assert len(stub.requests) == notify.SENDS_PER_HOUR
    assert "at most" in answers[-1].content.decode()


def test_without_a_mail_server_there_is_no_email_option(alice_client):
    page = alice_client.get("/settings/").content.decode()
    assert "This site has no mail server set up" in page and "email-target" not in page
    alice_client.post("/settings/notifications/email/", {"email-target": "a@example.com"})
    assert not Channel.objects.exists()


# --- the settings page ---------------------------------------------------------------------------


def test_the_test_button_sends_a_test_and_shows_the_outcome(alice_client, stub):
    add_webhook(alice_client, f"{stub.url}/hook", SECRET)
    channel = Channel.objects.get()
    response = alice_client.post(f"/settings/notifications/{channel.pk}/test/", headers=POLL)
    assert response.status_code == 200
    assert f'id="channel-{channel.pk}"' in response.text and "Sent" in response.text
    [call] = calls(stub)
    sent = json.loads(call["body"])
    assert sent["event"] == "test" and sent["tasks"] == []
    assert call["headers"]["x-mjdash-event"] == "test" and call["headers"]["x-mjdash-signature"]

    stub.answer("/hook", Answer(status=404))
    response = alice_client.post(f"/settings/notifications/{channel.pk}/test/", follow=True)
    assert "The webhook receiver refused the message (HTTP 404)." in response.text


def test_the_secret_never_appears_in_a_page(alice_client, stub):
    page = add_webhook(alice_client, f"{stub.url}/hook", SECRET).content.decode()
    assert SECRET not in page and "…4321" in page
    channel = Channel.objects.get()
    assert channel.secret == SECRET
    alice_client.post(f"/settings/notifications/{channel.pk}/test/")
    assert SECRET not in alice_client.get("/settings/").content.decode()
    # a form sent back with an error does not echo the secret either
    page = add_webhook(alice_client, "not a url", SECRET).content.decode()
    assert SECRET not in page and "Enter a valid URL." in page


def test_the_secret_is_encrypted_at_rest(alice_client, stub):
    from django.db import connection

    add_webhook(alice_client, f"{stub.url}/hook", SECRET)
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM tracker_channel")
        [(stored,)] = cursor.fetchall()
    assert stored.startswith("fernet:") and SECRET not in stored


def test_a_webhook_url_with_a_key_in_its_path_is_shown_masked(alice_client, stub):
    add_webhook(alice_client, f"{stub.url}/services/T000/B000/ZQWRsecretpathkey9")
    page = alice_client.get("/settings/").content.decode()
    assert "ZQWRsecretpathkey9" not in page and f"{stub.url}/…key9" in page


def test_a_private_webhook_address_is_refused_when_private_gateways_are_not(
    alice_client, stub, settings
):
    settings.MJDASH_ALLOW_PRIVATE_GATEWAYS = False
    page = add_webhook(alice_client, f"{stub.url}/hook", SECRET).content.decode()
    assert "is not a public address" in page
    assert f"{stub.url}/hook" in page  # what she typed is still there
    assert not Channel.objects.exists()


def test_a_private_address_saved_earlier_is_refused_at_connect_time(alice_client, stub, settings):
    add_webhook(alice_client, f"{stub.url}/hook")
    settings.MJDASH_ALLOW_PRIVATE_GATEWAYS = False
    sent, error = notify.send_test(Channel.objects.get())
    assert not sent and "not a public address" in error
    assert stub.requests == []


def test_a_stranger_can_neither_see_nor_change_alices_notifications(alice_client, bob_client, stub):
    add_webhook(alice_client, f"{stub.url}/hook")
    channel = Channel.objects.get()
    assert stub.url not in bob_client.get("/settings/").content.decode()
    for action in ("test", "remove"):
        assert bob_client.post(f"/settings/notifications/{channel.pk}/{action}/").status_code == 404
        assert bob_client.get(f"/settings/notifications/{channel.pk}/{action}/").status_code in (
            404,
            405,
        )
    assert Channel.objects.filter(pk=channel.pk).exists() and stub.requests == []


def test_every_notification_route_needs_a_login(client, alice, stub):
    channel = Channel.objects.create(user=alice, kind="webhook", target=f"{stub.url}/hook")
    for path in (
        "/settings/notifications/webhook/",
        "/settings/notifications/email/",
        f"/settings/notifications/{channel.pk}/test/",
        f"/settings/notifications/{channel.pk}/remove/",
    ):
        response = client.post(path)
        assert response.status_code == 302 and "/accounts/login/" in response.url
    assert stub.requests == []


def test_removing_a_channel_stops_its_messages(alice_client, sandbox, stub):
    add_webhook(alice_client, f"{stub.url}/hook")
    channel = Channel.objects.get()
    alice_client.post(f"/settings/notifications/{channel.pk}/remove/")
    watched_until_finished(alice_client, sandbox)
    run_worker()
    assert stub.requests == [] and not Channel.objects.exists()


def test_at_most_five_channels(alice_client, stub):
    for n in range(Channel.MAX_PER_USER + 1):
        page = add_webhook(alice_client, f"{stub.url}/hook{n}").content.decode()
    assert Channel.objects.count() == Channel.MAX_PER_USER
    assert "the most there can be" in page


# --- the hook itself ------------------------------------------------------------------------------


def test_the_hook_costs_one_query_for_people_with_nothing_set_up(
    alice_client, sandbox, django_assert_num_queries
):
    row = watched_until_finished(alice_client, sandbox)
    with django_assert_num_queries(1):
        notify.finished([row.pk])


def test_the_hook_ignores_rows_that_are_gone_or_unfinished(alice_client, alice, sandbox, stub):
    add_webhook(alice_client, f"{stub.url}/hook")
    running = track_new_task(alice_client, sandbox, step_seconds=60)
    notify.finished([])
    notify.finished([10**9, TrackedTask.objects.get(task_id=running).pk])
    run_worker()
    assert not Notice.objects.exists() and stub.requests == []


def test_what_a_dead_worker_lost_is_sent_after_the_sweep(alice_client, sandbox, stub):
    add_webhook(alice_client, f"{stub.url}/hook")
    watched_until_finished(alice_client, sandbox)
    drop_queued_jobs()  # the worker died with the queued job
    run_worker()
    assert stub.requests == []
    Notice.objects.update(created_at=timezone.now() - timedelta(minutes=10))
    assert notify.sweep() == 1
    run_worker()
    assert len(stub.requests) == 1
    assert notify.sweep() == 0  # at most once a minute


def test_the_admin_shows_neither_the_secret_nor_a_webhook_urls_key(admin_client, alice, stub):
    url = f"{stub.url}/services/T000/B000/ZQWRsecretpathkey9"
    channel = notify.add_channel(alice, "webhook", url, SECRET)
    notify.send_test(channel)
    pages = [
        admin_client.get("/admin/tracker/channel/"),
        admin_client.get(f"/admin/tracker/channel/{channel.pk}/change/"),
        admin_client.get("/admin/tracker/delivery/"),
    ]
    for page in pages:
        assert page.status_code == 200
        assert SECRET.encode() not in page.content and b"ZQWRsecretpathkey9" not in page.content
    assert b"\xe2\x80\xa64321" in pages[1].content  # …4321


def test_a_task_untracked_before_its_retry_is_not_sent_as_an_empty_message(
    alice_client, sandbox, stub
):
    stub.answer("/hook", Answer(status=500))
    add_webhook(alice_client, f"{stub.url}/hook")
    row = watched_until_finished(alice_client, sandbox)
    run_worker()
    alice_client.post(f"/tasks/{row.task_id}/untrack/")
    assert not TrackedTask.objects.filter(pk=row.pk).exists()
    stub.answer("/hook", Answer(status=200))
    run_retries_now()
    assert len(stub.requests) == 1  # the first, failed try only
