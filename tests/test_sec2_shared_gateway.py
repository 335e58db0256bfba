"""Security section 2: on the shared site gateway, a task belongs to the account that tracked
it first. Alice and carol both use the site default, so the gateway would hand either of them
any task made with its token; mjdash must not."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from tests.conftest import BOB_TOKEN, PASSWORD, use_gateway
from tracker.models import Profile, TaskOwner, TrackedTask

pytestmark = pytest.mark.django_db


def gateway_calls(sandbox) -> int:
    return sum(sandbox.stats().values())


def text_of(response) -> str:
    if response.streaming:  # an image: its bytes hold no prompt; say that it was served
        return f"<{response['Content-Type']} served>"
    return response.content.decode("utf-8", "replace")


def pages_of(client, task_id: str) -> str:
    """Everything a person could open about one task."""
    return "".join(
        text_of(client.get(path))
        for path in (
            "/",
            f"/tasks/{task_id}/",
            f"/tasks/{task_id}/seed/",
            f"/mj/image/{task_id}",
            f"/mj/image/{task_id}?thumb=1",
            "/gallery/",
        )
    )


def test_a_second_account_gets_not_found_and_mjdash_never_asks(
    alice_client, carol_client, carol, sandbox
):
    task = sandbox.create_task(prompt="alice's secret castle")
    alice_client.post("/", {"ids": task["id"]})
    sandbox.reset_stats()

    carol_client.post("/", {"ids": task["id"]})
    carol_client.post(f"/tasks/{task['id']}/recheck/")
    seen = pages_of(carol_client, task["id"])

    assert gateway_calls(sandbox) == 0
    assert "secret castle" not in seen
    row = TrackedTask.objects.get(user=carol)
    assert (row.missing_at_gateway, row.prompt, row.raw) == (True, "", {})
    assert TaskOwner.objects.get(task_id=task["id"]).user.username == "alice"
    assert "secret castle" in pages_of(alice_client, task["id"])


def masked(response, task_id: str) -> str:
    """A page with what differs by nature (the ID, the CSRF token) taken out."""
    text = text_of(response).replace(task_id, "ID")
    return re.sub(r'(csrfmiddlewaretoken" value="|X-CSRFToken": "|nonce=")[^"]+', r"\1", text)


def test_someone_elses_id_looks_exactly_like_one_that_does_not_exist(
    alice_client, carol_client, sandbox
):
    taken = sandbox.create_task()["id"]
    alice_client.post("/", {"ids": taken})
    unknown = str(int(taken) + 7)
    carol_client.post("/", {"ids": f"{taken}\n{unknown}"})
    assert "Not found at the gateway" in carol_client.get("/").content.decode()
    for path in ("/tasks/{}/", "/tasks/{}/seed/", "/mj/image/{}", "/mj/image/{}?thumb=1"):
        a = carol_client.get(path.format(taken))
        b = carol_client.get(path.format(unknown))
        assert a.status_code == b.status_code, path
        assert masked(a, taken) == masked(b, unknown), path


def test_an_id_nobody_owns_yet_is_not_reserved_by_a_guesser(
    alice_client, carol_client, carol, sandbox
):
    """IDs are predictable: pasting one before it exists must not win it later."""
    future = "1900000000000" + "123"
    carol_client.post("/", {"ids": future})
    assert not TaskOwner.objects.filter(task_id=future).exists()
    sandbox.create_task(id=future, prompt="made later by alice")
    alice_client.post("/", {"ids": future})
    carol_client.post(f"/tasks/{future}/recheck/")
    assert TrackedTask.objects.get(user=carol).prompt == ""
    assert "made later by alice" in pages_of(alice_client, future)


def test_guessing_is_throttled_with_a_clear_message_and_nothing_is_lost(
    carol_client, carol, sandbox, settings
):
    settings.MJDASH_GUESS_LIMIT = 5
    guesses = [str(1732000000000000 + n) for n in range(30)]
    response = carol_client.post("/", {"ids": "\n".join(guesses)}, headers={"HX-Request": "true"})
    page = response.content.decode()
    assert "Too many task IDs that the gateway does not know" in page
    assert "for 15 minutes" in page
    assert TrackedTask.objects.filter(user=carol).count() == 5
    assert guesses[5] in page and guesses[29] in page  # kept in the box
    sandbox.reset_stats()
    carol_client.post("/", {"ids": sandbox.create_task()["id"]})
    assert gateway_calls(sandbox) == 0  # even a real ID waits for the window
    Profile.objects.filter(user=carol).update(
        guess_window_started_at=timezone.now() - timedelta(minutes=16)
    )
    real = sandbox.create_task()["id"]
    carol_client.post("/", {"ids": real})
    assert TrackedTask.objects.get(user=carol, task_id=real).status == "SUCCESS"


def test_rechecking_a_guess_costs_the_same_budget(carol_client, carol, settings):
    settings.MJDASH_GUESS_LIMIT = 2
    carol_client.post("/", {"ids": "1732000000000001 1732000000000002"})
    carol_client.post("/tasks/1732000000000001/recheck/")
    row = TrackedTask.objects.get(user=carol, task_id="1732000000000001")
    assert "Too many task IDs" in row.last_error


def test_a_bulk_paste_of_real_ids_is_not_slowed(carol_client, carol, sandbox, settings):
    settings.MJDASH_GUESS_LIMIT = 20
    ids = [sandbox.create_task()["id"] for _ in range(150)]
    sandbox.reset_stats()
    carol_client.post("/", {"ids": ",".join(ids)})
    rows = TrackedTask.objects.filter(user=carol)
    assert rows.count() == 150 and not rows.filter(missing_at_gateway=True).exists()
    assert sandbox.stats().get("list_by_condition", 0) <= 5  # 20, 40, 80, then the rest


def test_on_a_personal_gateway_the_gateway_decides(alice_client, bob_client, bob, sandbox):
    alices = sandbox.create_task()["id"]
    alice_client.post("/", {"ids": alices})
    bobs = sandbox.create_task(token=BOB_TOKEN)["id"]
    bob_client.post("/", {"ids": f"{alices} {bobs}"})
    assert TrackedTask.objects.get(user=bob, task_id=bobs).status == "SUCCESS"
    assert TrackedTask.objects.get(user=bob, task_id=alices).missing_at_gateway
    # Two accounts that hold the same personal token both see what it can fetch.
    dave = get_user_model().objects.create_user("dave", password=PASSWORD)
    use_gateway(dave, sandbox.url, BOB_TOKEN)
    dave_client = Client()
    dave_client.force_login(dave)
    dave_client.post("/", {"ids": bobs})
    assert TrackedTask.objects.get(user=dave, task_id=bobs).status == "SUCCESS"
    assert not TaskOwner.objects.filter(task_id=bobs).exists()


def test_staff_can_reassign_a_task_in_the_admin(
    alice_client, carol_client, alice, carol, admin_client, sandbox
):
    task = sandbox.create_task(prompt="a commission for carol")
    alice_client.post("/", {"ids": task["id"]})
    owner = TaskOwner.objects.get(task_id=task["id"])
    response = admin_client.post(
        f"/admin/tracker/taskowner/{owner.pk}/change/", {"user": carol.pk}, follow=True
    )
    assert response.status_code == 200
    assert TaskOwner.objects.get(pk=owner.pk).user == carol
    assert not TrackedTask.objects.filter(user=alice).exists()
    assert "a commission for carol" in pages_of(carol_client, task["id"])


def test_a_site_can_keep_the_shared_gateway_for_staff(
    carol_client, carol, sandbox, settings, admin_client
):
    settings.MJDASH_SHARED_DEFAULT_FOR_ALL = False
    sandbox.reset_stats()
    page = carol_client.post("/", {"ids": "1732000000000001"}, follow=True).content.decode()
    assert "shared gateway is kept for staff" in page
    assert not TrackedTask.objects.filter(user=carol).exists()
    assert gateway_calls(sandbox) == 0
    task = sandbox.create_task()["id"]
    admin_client.post("/", {"ids": task})
    assert TrackedTask.objects.get(task_id=task).status == "SUCCESS"


def test_two_accounts_racing_for_one_id_cannot_both_win(alice, carol, sandbox):
    from tracker import ownership
    from tracker.models import Gateway

    site = Gateway.site_default()
    task_id = sandbox.create_task()["id"]
    won = [ownership.claim(user, site, [task_id]) for user in (alice, carol)]
    assert won == [{task_id}, set()]


def test_a_failing_gateway_does_not_make_guessing_free(carol_client, carol, sandbox, settings):
    settings.MJDASH_GUESS_LIMIT = 20
    sandbox.fault("list_by_condition", "status", status=502)
    guesses = [str(1732000000000000 + n) for n in range(300)]
    carol_client.post("/", {"ids": "\n".join(guesses)})
    assert TrackedTask.objects.filter(user=carol).count() <= 20
    assert TaskOwner.objects.filter(user=carol).count() <= 20
    assert Profile.objects.get(user=carol).guess_misses >= 20


def test_changing_the_sites_gateway_settings_frees_no_task(
    alice_client, carol_client, carol, sandbox, settings
):
    task = sandbox.create_task(prompt="still alice's")["id"]
    alice_client.post("/", {"ids": task})
    settings.MJDASH_GATEWAY_AUTH = "raw"  # a new shared row for the same gateway user
    carol_client.post("/", {"ids": task})
    carol_client.post(f"/tasks/{task}/recheck/")
    assert "still alice's" not in pages_of(carol_client, task)
    assert TrackedTask.objects.get(user=carol).prompt == ""


def test_rechecking_twice_at_once_asks_the_gateway_once(alice_client, sandbox, settings):
    settings.MJDASH_REFRESH_SECONDS = 5
    task = sandbox.create_task()["id"]
    alice_client.post("/", {"ids": task})
    sandbox.reset_stats()
    for _ in range(5):
        alice_client.post(f"/tasks/{task}/recheck/")
    assert sandbox.stats().get("fetch", 0) == 1


def test_two_tabs_cannot_spend_one_budget_twice(carol, settings):
    """Each paste reserves its guesses before asking; what is left for a second tab at the
    same moment is only what the first did not take."""
    from tracker import ownership

    settings.MJDASH_GUESS_LIMIT = 20
    first = ownership.reserve_guesses(carol, 100)
    second = ownership.reserve_guesses(carol, 100)
    assert (first, second) == (20, 0)
    ownership.settle_guesses(carol, first, misses=3)  # 17 of them were real after all
    assert ownership.guesses_left(carol) == 17


def test_re_pasting_ones_own_tasks_does_not_widen_guessing(carol_client, carol, sandbox, settings):
    settings.MJDASH_GUESS_LIMIT = 5
    own = [sandbox.create_task()["id"] for _ in range(30)]
    carol_client.post("/", {"ids": ",".join(own)})
    TrackedTask.objects.filter(user=carol).delete()  # untracked; the claims stay hers
    guesses = [str(1732000000000000 + n) for n in range(50)]
    carol_client.post("/", {"ids": ",".join(own + guesses)})
    assert TrackedTask.objects.filter(user=carol, task_id__in=guesses).count() <= 5


def test_with_the_shared_gateway_kept_for_staff_nothing_asks_it_for_others(
    carol_client, carol, sandbox, settings
):
    task = sandbox.create_task(step_seconds=30)["id"]
    carol_client.post("/", {"ids": task})
    settings.MJDASH_SHARED_DEFAULT_FOR_ALL = False
    sandbox.reset_stats()
    carol_client.get("/tasks/list/", headers={"HX-Request": "true"})
    carol_client.get(f"/tasks/{task}/?poll=1", headers={"HX-Request": "true"})
    carol_client.get(f"/tasks/{task}/seed/")
    carol_client.get(f"/mj/image/{task}")
    carol_client.post(f"/tasks/{task}/recheck/")
    assert gateway_calls(sandbox) == 0


def test_someone_elses_id_costs_a_guess_like_an_unknown_one(
    alice_client, carol_client, carol, sandbox, settings
):
    settings.MJDASH_GUESS_LIMIT = 10
    taken = sandbox.create_task()["id"]
    alice_client.post("/", {"ids": taken})
    carol_client.post("/", {"ids": taken})
    assert Profile.objects.get(user=carol).guess_misses == 1
    carol_client.post(f"/tasks/{taken}/recheck/")
    assert Profile.objects.get(user=carol).guess_misses == 2
