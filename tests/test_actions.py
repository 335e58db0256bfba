"""Acting on a result: U2 on a finished grid, the input a MODAL task waits for, and new jobs
from the dashboard, each submitted once however often it is clicked, and only on one's own
tasks. Over real HTTP against the sandbox."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.conftest import NOVICEZK_TOKEN, run_worker, use_gateway, wait_until
from tracker.models import Submission, TrackedTask

pytestmark = pytest.mark.django_db
POLL = {"HX-Request": "true"}
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


def finished_grid(client, sandbox, **fields) -> TrackedTask:
    task = sandbox.create_task(**fields)
    client.post("/", {"ids": task["id"]})
    row = TrackedTask.objects.get(task_id=task["id"])
    assert row.is_done
    return row


def button(client, row: TrackedTask, label: str) -> dict:
    """The form the task's page shows for one of its buttons: its customId and key."""
    page = client.get(f"/tasks/{row.task_id}/").content.decode()
    for form in re.findall(r'<form method="post" action="/tasks/\d+/action/".*?</form>', page):
        if re.search(rf">(<span[^>]*>[^<]*</span> )?{re.escape(label)}(<|$)", form):
            custom_id = re.search(r'name="custom_id" value="([^"]+)"', form).group(1)
            key = re.search(r'name="key" value="([^"]+)"', form).group(1)
            return {"custom_id": custom_id.replace("&amp;", "&"), "key": key}
    raise AssertionError(f"no {label} button on the page")


def poll_until_done(client, task_id: str) -> TrackedTask:
    def done():
        client.get("/tasks/list/", headers=POLL)
        row = TrackedTask.objects.get(task_id=task_id)
        return row if row.finished else None

    return wait_until(done, timeout=15, every=0.3)


def test_u2_on_a_finished_grid_tracks_its_upscale_to_success_linked_to_its_parent(
    alice_client, alice, sandbox
):
    grid = finished_grid(alice_client, sandbox, prompt="a lighthouse at dusk")
    response = alice_client.post(f"/tasks/{grid.task_id}/action/", button(alice_client, grid, "U2"))
    child = TrackedTask.objects.get(user=alice, parent_task_id=grid.task_id)
    assert response.status_code == 302 and response["Location"] == f"/tasks/{child.task_id}/"
    assert poll_until_done(alice_client, child.task_id).status == "SUCCESS"
    child.refresh_from_db()
    assert (child.action, child.prompt) == ("UPSCALE", "a lighthouse at dusk")
    page = alice_client.get(f"/tasks/{grid.task_id}/").content.decode()
    assert child.task_id in page  # the grid's page lists what came of it


def test_with_htmx_a_click_sends_the_browser_to_the_new_task(alice_client, alice, sandbox):
    grid = finished_grid(alice_client, sandbox)
    form = button(alice_client, grid, "V3")
    response = alice_client.post(f"/tasks/{grid.task_id}/action/", form, headers=POLL)
    child = TrackedTask.objects.get(user=alice, parent_task_id=grid.task_id)
    assert response["HX-Redirect"] == f"/tasks/{child.task_id}/"
    assert child.action in ("", "VARIATION")  # asked at once: it shows real state


def test_buttons_are_readable_even_when_the_gateway_sent_only_an_emoji(alice_client, sandbox):
    grid = finished_grid(alice_client, sandbox)
    page = alice_client.get(f"/tasks/{grid.task_id}/").content.decode()
    assert "Reroll" in page and "U1" in page and "V4" in page
    upscale = finished_grid(alice_client, sandbox, action="UPSCALE")
    page = alice_client.get(f"/tasks/{upscale.task_id}/").content.decode()
    assert "Pan left" in page and "Vary (Strong)" in page and "Custom Zoom" in page


def test_a_button_the_gateway_did_not_offer_is_never_sent(alice_client, sandbox):
    grid = finished_grid(alice_client, sandbox)
    sandbox.reset_stats()
    key = f"action:{grid.pk}:MJ::made-up::1:0"
    response = alice_client.post(
        f"/tasks/{grid.task_id}/action/", {"custom_id": "MJ::made-up::1", "key": key}
    )
    assert response.status_code == 302
    assert sandbox.stats() == {}
    assert "does not offer that action" in alice_client.get(response["Location"]).content.decode()


def test_a_modal_task_gets_its_prompt_and_zoom_and_runs(alice_client, alice, sandbox):
    upscale = finished_grid(alice_client, sandbox, action="UPSCALE")
    alice_client.post(
        f"/tasks/{upscale.task_id}/action/", button(alice_client, upscale, "Custom Zoom")
    )
    waiting = TrackedTask.objects.get(user=alice, parent_task_id=upscale.task_id)
    assert waiting.needs_input
    page = alice_client.get(f"/tasks/{waiting.task_id}/").content.decode()
    assert "This task waits for your input" in page and 'name="zoom"' in page
    key = re.search(r'name="key" value="(modal:[^"]+)"', page).group(1)
    sandbox.reset_stats()
    form = {"prompt": "a wider view", "zoom": "1.5", "key": key}
    response = alice_client.post(f"/tasks/{waiting.task_id}/modal/", form)
    assert response["Location"] == f"/tasks/{waiting.task_id}/"
    again = alice_client.post(f"/tasks/{waiting.task_id}/modal/", form)  # resubmitted
    assert again["Location"] == f"/tasks/{waiting.task_id}/"
    assert sandbox.stats()["submit_modal"] == 1
    assert poll_until_done(alice_client, waiting.task_id).status == "SUCCESS"
    assert TrackedTask.objects.get(pk=waiting.pk).prompt == "a wider view --zoom 1.5"


def test_imagine_tracks_the_new_job_and_shows_it_running(alice_client, alice, sandbox):
    page = alice_client.get("/").content.decode()
    key = re.search(r'name="key" value="([0-9a-f]{32})"', page).group(1)
    response = alice_client.post(
        "/imagine/", {"prompt": "a quiet harbour", "mode": "", "key": key}, headers=POLL
    )
    body = response.content.decode()
    row = TrackedTask.objects.get(user=alice)
    assert row.task_id in body and "is tracked and runs below" in body
    assert 'id="task-list"' in body and "a quiet harbour" in body
    assert poll_until_done(alice_client, row.task_id).status == "SUCCESS"


def test_imagine_with_a_reference_image_sends_it_as_base64(alice_client, alice, sandbox):
    picture = SimpleUploadedFile("ref.png", PNG, content_type="image/png")
    form = {"prompt": "like this", "images": [picture], "mode": "relax", "key": "k" * 32}
    response = alice_client.post("/imagine/", form)
    assert response.status_code == 302
    submission = Submission.objects.get(user=alice)
    assert submission.state == "accepted" and TrackedTask.objects.filter(user=alice).exists()


def test_imagine_refuses_what_is_not_a_picture_and_keeps_the_prompt(alice_client, sandbox):
    fake = SimpleUploadedFile("ref.png", b"<svg onload=alert(1)>", content_type="image/png")
    sandbox.reset_stats()
    response = alice_client.post(
        "/imagine/", {"prompt": "keep me", "images": [fake], "key": "k" * 32}, headers=POLL
    )
    body = response.content.decode()
    assert "is not a PNG, JPEG, WebP or GIF picture" in body and "keep me" in body
    assert sandbox.stats() == {}


@pytest.mark.parametrize(
    "code, says",
    [
        (23, "queue is full"),
        (24, "banned word"),
        (9, "refused this (code 9"),
        (4, "refused this (code 4"),
    ],
)
def test_every_refusal_code_is_a_clear_message_and_nothing_is_tracked(
    alice_client, alice, sandbox, code, says
):
    sandbox.fault("submit", "code", code=code, times=1)
    response = alice_client.post("/imagine/", {"prompt": "cat", "key": "r" * 32}, headers=POLL)
    assert says in response.content.decode()
    assert not TrackedTask.objects.filter(user=alice).exists()


@pytest.mark.parametrize("code", [21, 22])
def test_already_exists_and_queued_still_track_the_task_they_name(
    alice_client, alice, sandbox, code
):
    use_gateway(alice, sandbox.url, NOVICEZK_TOKEN, "mj-api-secret")  # sends 21/22 as they are
    sandbox.fault("submit", "code", code=code, times=1)
    response = alice_client.post("/imagine/", {"prompt": "in line", "key": f"{code}" * 16})
    submission = Submission.objects.get(user=alice)
    assert submission.state == "accepted" and submission.task_id
    assert TrackedTask.objects.get(user=alice).task_id == submission.task_id
    assert submission.task_id in alice_client.get(response["Location"]).content.decode()


def test_a_double_click_two_tabs_and_a_retried_request_each_make_one_call(
    alice_client, alice, sandbox, client
):
    grid = finished_grid(alice_client, sandbox)
    first_tab = button(alice_client, grid, "U1")
    second_tab = button(alice_client, grid, "U1")  # the same page, open twice
    assert first_tab == second_tab
    sandbox.reset_stats()
    url = f"/tasks/{grid.task_id}/action/"
    answers = [alice_client.post(url, first_tab, headers=POLL) for _ in range(2)]  # double click
    answers.append(alice_client.post(url, second_tab))  # the other tab
    answers.append(alice_client.post(url, first_tab))  # a retried request
    assert sandbox.stats()["submit_action"] == 1
    child = TrackedTask.objects.get(user=alice, parent_task_id=grid.task_id)
    assert {a.get("HX-Redirect") or a["Location"] for a in answers} == {f"/tasks/{child.task_id}/"}

    again = button(alice_client, grid, "U1")  # deliberately, once more: a new click
    assert again["key"] != first_tab["key"]
    alice_client.post(url, again)
    assert sandbox.stats()["submit_action"] == 2


def test_imagine_twice_from_two_tabs_with_the_same_prompt_is_one_job(alice_client, sandbox):
    sandbox.reset_stats()
    for key in ("a" * 32, "b" * 32):
        alice_client.post("/imagine/", {"prompt": "same words", "key": key})
    assert sandbox.stats()["submit"] == 1


def test_a_timeout_after_the_gateway_accepted_makes_no_second_call(
    alice_client, alice, sandbox, settings
):
    settings.MJDASH_SUBMIT_TIMEOUT = 1
    grid = finished_grid(alice_client, sandbox)
    form = button(alice_client, grid, "U3")
    sandbox.fault("submit_action", "accepted_hang", seconds=3, times=1)
    sandbox.reset_stats()
    response = alice_client.post(f"/tasks/{grid.task_id}/action/", form, headers=POLL)
    assert "may have accepted this" in response.content.decode()
    assert "Check before trying again" in response.content.decode()
    alice_client.post(f"/tasks/{grid.task_id}/action/", form, headers=POLL)  # tried again
    assert sandbox.stats()["submit_action"] == 1
    assert Submission.objects.get(user=alice).state == "uncertain"


def test_a_stranger_gets_404_and_no_gateway_call(alice_client, bob_client, sandbox):
    grid = finished_grid(alice_client, sandbox)
    form = button(alice_client, grid, "U1")
    sandbox.reset_stats()
    for path in ("action", "modal"):
        assert bob_client.post(f"/tasks/{grid.task_id}/{path}/", form).status_code == 404
        assert bob_client.get(f"/tasks/{grid.task_id}/{path}/").status_code == 404
    assert sandbox.stats() == {}


def test_submits_are_rate_limited_per_user(alice_client, sandbox, settings):
    settings.MJDASH_SUBMIT_RATE_PER_MINUTE = 2
    sandbox.reset_stats()
    for n in range(3):
        response = alice_client.post("/imagine/", {"prompt": f"job {n}", "key": f"{n}" * 32})
    assert sandbox.stats()["submit"] == 2
    assert "more submits in a minute" in alice_client.get(response["Location"]).content.decode()


def test_submitting_needs_a_login_and_csrf(client, alice, sandbox):
    from django.test import Client

    assert client.post("/imagine/", {"prompt": "x"})["Location"].startswith("/accounts/login/")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post("/imagine/", {"prompt": "x", "key": "c" * 32}).status_code == 403


@pytest.mark.django_db(transaction=True)  # the worker that keeps the four images commits
def test_the_lightbox_of_one_image_of_a_grid_offers_its_own_u_and_v(alice_client, sandbox):
    grid = finished_grid(alice_client, sandbox)
    run_worker()  # its four images are kept, so the lightbox can show one of them
    whole = alice_client.get(f"/gallery/{grid.task_id}/view/", headers=POLL).content.decode()
    assert all(f">{name}<" in whole for name in ("U1", "U4", "V1", "V4")) and "Reroll" in whole
    third = alice_client.get(f"/gallery/{grid.task_id}/view/?part=3", headers=POLL).content.decode()
    assert ">U3<" in third and ">V3<" in third and "Reroll" in third
    assert ">U1<" not in third and ">V4<" not in third


@pytest.mark.django_db(transaction=True)
def test_the_same_imagine_from_two_tabs_at_the_same_moment_is_one_job(alice, sandbox):
    import threading

    from tracker import gateway

    sandbox.reset_stats()
    start = threading.Barrier(2)

    def tab(key: str) -> None:
        start.wait()
        gateway.imagine(alice, "two tabs, one click", [], "", key)

    tabs = [threading.Thread(target=tab, args=(key * 32,)) for key in "xy"]
    for thread in tabs:
        thread.start()
    for thread in tabs:
        thread.join()
    assert sandbox.stats()["submit"] == 1


def test_an_upload_larger_than_any_form_takes_is_refused_before_it_is_read(
    alice_client, sandbox, settings
):
    settings.MJDASH_REFERENCE_MAX_BYTES = 1000
    big = SimpleUploadedFile("big.png", PNG + b"\0" * 400_000, content_type="image/png")
    sandbox.reset_stats()
    response = alice_client.post("/imagine/", {"prompt": "x", "images": [big], "key": "z" * 32})
    assert response.status_code == 400
    assert sandbox.stats() == {}
