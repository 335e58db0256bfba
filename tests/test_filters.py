"""Finding tasks: filters and sorts live in the URL, on the dashboard and in the gallery."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import track_new_task
from tracker.models import TrackedTask

pytestmark = pytest.mark.django_db


@pytest.fixture
def mixed(alice_client, alice, sandbox):
    """A done fox, a done owl upscale, a failed cat, and a running hare."""
    fox = track_new_task(alice_client, sandbox, prompt="A red FOX", action="IMAGINE")
    owl = track_new_task(alice_client, sandbox, prompt="an owl", action="UPSCALE")
    cat = track_new_task(alice_client, sandbox, prompt="a cat", outcome="failure")
    hare = track_new_task(alice_client, sandbox, prompt="a hare", step_seconds=600)
    return {"fox": fox, "owl": owl, "cat": cat, "hare": hare}


def shown(client, url: str) -> list[str]:
    """The task IDs a list shows, in order."""
    html = client.get(url).content.decode()
    rows = TrackedTask.objects.values_list("task_id", flat=True)
    return sorted((i for i in rows if f'id="task-{i}"' in html), key=html.index)


def test_the_default_puts_what_runs_first(alice_client, mixed):
    assert shown(alice_client, "/")[0] == mixed["hare"]


def test_status_filters_combine(alice_client, mixed):
    assert set(shown(alice_client, "/?status=done")) == {mixed["fox"], mixed["owl"]}
    both = set(shown(alice_client, "/?status=failed&status=running"))
    assert both == {mixed["cat"], mixed["hare"]}


def test_prompt_text_is_case_insensitive_and_combines_with_action(alice_client, mixed):
    assert shown(alice_client, "/?q=fox") == [mixed["fox"]]
    assert shown(alice_client, "/?q=o&action=UPSCALE") == [mixed["owl"]]


def test_the_submit_date_range(alice_client, alice, mixed):
    last_week = timezone.now() - timedelta(days=7)
    TrackedTask.objects.filter(task_id=mixed["owl"]).update(submitted_at=last_week)
    day = timezone.localdate() - timedelta(days=7)
    assert shown(alice_client, f"/?since={day}&until={day}") == [mixed["owl"]]
    assert mixed["owl"] not in shown(alice_client, f"/?since={timezone.localdate()}")


def test_sorts_in_either_direction(alice_client, mixed):
    newest, oldest = shown(alice_client, "/?sort=-added"), shown(alice_client, "/?sort=added")
    assert newest == list(reversed(oldest))


def test_the_counts_are_the_status_filter(alice_client, mixed):
    html = alice_client.get("/").content.decode()
    assert 'href="?status=running"' in html and 'href="?status=failed"' in html


def test_the_poll_keeps_the_filter(alice_client, mixed):
    html = alice_client.get("/?status=running&q=hare").content.decode()
    assert 'hx-get="/tasks/list/?status=running&amp;q=hare&amp;page=1"' in html
    poll = alice_client.get(
        "/tasks/list/?status=running&q=hare&page=1", headers={"HX-Request": "true"}
    )
    assert mixed["hare"] in poll.content.decode() and mixed["fox"] not in poll.content.decode()


def test_nothing_matching_says_how_to_get_back(alice_client, mixed):
    html = alice_client.get("/?q=zebra").content.decode()
    assert "No task matches these filters." in html and 'href="?"' in html


def test_a_bad_value_is_ignored_not_an_error(alice_client, mixed):
    response = alice_client.get("/?status=bogus&since=not-a-date&sort=sideways")
    assert response.status_code == 200


def test_the_gallery_filters_and_its_zip_takes_what_is_shown(alice_client, mixed):
    html = alice_client.get("/gallery/?q=fox").content.decode()
    assert f"/tasks/{mixed['fox']}/" in html and f"/tasks/{mixed['owl']}/" not in html
    assert '<input type="hidden" name="q" value="fox">' in html


def test_the_gallery_sorts_newest_finished_first_by_default(alice_client, mixed):
    html = alice_client.get("/gallery/").content.decode()
    assert '<option value="" selected>newest finished</option>' in html
    assert "running first" not in html


def test_favourites_hidden_and_notes_are_the_users_own_marks(alice_client, mixed, sandbox):
    fox, owl = mixed["fox"], mixed["owl"]
    sandbox.reset_stats()
    alice_client.post(f"/tasks/{fox}/organise/", {"favourite": "1"})
    alice_client.post(f"/tasks/{owl}/organise/", {"hidden": "1"})
    alice_client.post(f"/tasks/{fox}/organise/", {"note": "  print this one  "})
    assert sandbox.stats() == {}  # marks never reach the gateway
    assert shown(alice_client, "/?fav=on") == [fox]
    assert owl not in shown(alice_client, "/")  # hidden from the default view
    assert shown(alice_client, "/?hidden=on") == [owl]  # still tracked, one click away
    assert owl not in alice_client.get("/gallery/").content.decode()
    page = alice_client.get(f"/tasks/{fox}/").content.decode()
    assert "print this one</textarea>" in page and 'aria-pressed="true"' in page
    star = alice_client.post(
        f"/tasks/{fox}/organise/", {"favourite": "0"}, headers={"HX-Request": "true"}
    )
    assert "☆" in star.content.decode() and not TrackedTask.objects.get(task_id=fox).favourite


def test_a_stranger_cannot_mark_someone_elses_task(bob_client, mixed):
    response = bob_client.post(f"/tasks/{mixed['fox']}/organise/", {"favourite": "1"})
    assert response.status_code == 404
    assert not TrackedTask.objects.get(task_id=mixed["fox"]).favourite


def test_the_action_menu_lists_the_actions_one_has(alice_client, mixed):
    html = alice_client.get("/").content.decode()
    assert '<option value="UPSCALE">UPSCALE</option>' in html
    assert '<option value="VIDEO">' not in html


def test_dates_at_the_calendars_ends_are_answered(alice_client, mixed):
    for query in ("until=9999-12-31", "since=0001-01-01", "since=9999-12-31"):
        assert alice_client.get(f"/?{query}").status_code == 200
        assert alice_client.get(f"/gallery/?{query}").status_code == 200
