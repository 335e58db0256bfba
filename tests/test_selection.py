"""Alice selects images in her gallery, or every image matching a filter, and acts on them
at once: favourite, hide, tag, untrack, or download them as a ZIP."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from django.contrib.messages import get_messages

from tests.conftest import run_worker, track_new_task
from tests.test_lightbox import gallery_of, tiles
from tracker.models import TrackedTask

pytestmark = pytest.mark.django_db


def bulk(client, action: str, **form):
    return client.post("/gallery/bulk/", {"do": action, "next": "/gallery/?q=fox", **form})


def said(response) -> str:
    """The message the action left for the next page (the last one: pastes leave theirs)."""
    return [str(m) for m in get_messages(response.wsgi_request)][-1]


def marked(field: str) -> set[str]:
    return set(TrackedTask.objects.filter(**{field: True}).values_list("task_id", flat=True))


@pytest.fixture
def foxes_and_owls(alice_client, sandbox, monkeypatch):
    """Six images over three gallery pages; one fox is hidden."""
    monkeypatch.setattr("tracker.views.gallery.PAGE_SIZE", 2)
    ids = gallery_of(
        alice_client, sandbox, "red fox", "owl", "arctic fox", "snowy owl", "fox cub", "fox kit"
    )
    TrackedTask.objects.filter(task_id=ids[5]).update(hidden=True)
    return ids


def test_ticked_images_become_favourites_and_it_says_how_many(alice_client, foxes_and_owls):
    ids = foxes_and_owls
    response = bulk(alice_client, "favourite", ids=[ids[0], ids[3]])
    assert response.status_code == 302 and response["Location"] == "/gallery/?q=fox"
    assert said(response) == "2 images added to favourites."
    assert marked("favourite") == {ids[0], ids[3]}
    response = bulk(alice_client, "unfavourite", ids=[ids[3]])
    assert said(response) == "1 image removed from favourites."
    assert marked("favourite") == {ids[0]}


def test_select_all_matching_reaches_every_page_but_only_what_the_filter_shows(
    alice_client, foxes_and_owls
):
    ids = foxes_and_owls
    assert tiles(alice_client, "q=fox") == [ids[0], ids[2], ids[4]]  # two pages
    page_one = alice_client.get("/gallery/?q=fox").content.decode()
    assert "Select all 3 images matching the filter" in page_one
    assert page_one.count('<li class="tile"') == 2

    response = bulk(alice_client, "favourite", all="1", q="fox")
    assert said(response) == "3 images added to favourites."
    assert marked("favourite") == {ids[0], ids[2], ids[4]}  # not the owls, not the hidden fox

    bulk(alice_client, "hide", all="1", q="owl")
    assert marked("hidden") == {ids[1], ids[3], ids[5]}
    response = bulk(alice_client, "unhide", all="1", hidden="1")  # the hidden ones' view
    assert said(response) == "3 images shown again."
    assert marked("hidden") == set()


def test_all_matching_ignores_ticked_ids_and_honours_every_filter(alice_client, foxes_and_owls):
    ids = foxes_and_owls
    TrackedTask.objects.filter(task_id=ids[2]).update(favourite=True)
    bulk(alice_client, "hide", all="1", q="fox", fav="1", ids=[ids[1]])
    assert marked("hidden") == {ids[2], ids[5]}  # ids[5] was hidden before


def test_tagging_a_selection_adds_the_tags_to_each(alice_client, foxes_and_owls):
    ids = foxes_and_owls
    response = bulk(alice_client, "tag", ids=[ids[0], ids[2]], tags="wildlife, Winter")
    assert said(response) == "2 images tagged."
    for task_id in ids[0], ids[2]:
        names = TrackedTask.objects.get(task_id=task_id).tags.values_list("name", flat=True)
        assert sorted(names) == ["Winter", "wildlife"]
    assert tiles(alice_client, "tag=wildlife") == [ids[0], ids[2]]
    response = bulk(alice_client, "tag", ids=[ids[1]], tags="  ,  ")
    assert said(response) == "Type a tag to add first."
    assert not TrackedTask.objects.get(task_id=ids[1]).tags.exists()


def test_untracking_a_selection_asks_first(alice_client, foxes_and_owls):
    ids = foxes_and_owls
    asked = bulk(alice_client, "untrack", all="1", q="owl")
    assert asked.status_code == 200
    page = asked.content.decode()
    assert "Stop tracking these 2 images?" in page
    assert 'name="all" value="1"' in page and 'name="q" value="owl"' in page
    assert TrackedTask.objects.count() == 6  # nothing yet

    response = bulk(alice_client, "untrack", all="1", q="owl", confirm=confirmation(page))
    assert said(response) == "Stopped tracking 2 images."
    left = set(TrackedTask.objects.values_list("task_id", flat=True))
    assert left == {ids[0], ids[2], ids[4], ids[5]}


def confirmation(page: str) -> str:
    return re.search(r'name="confirm" value="([^"]+)"', page)[1]


def test_a_confirmation_is_for_the_images_it_named(alice_client, sandbox, foxes_and_owls):
    asked = bulk(alice_client, "untrack", all="1", q="owl").content.decode()
    gallery_of(alice_client, sandbox, "barn owl")  # finishes while alice reads the question
    again = bulk(alice_client, "untrack", all="1", q="owl", confirm=confirmation(asked))
    assert "The selection changed" in again.content.decode()
    assert "Stop tracking these 3 images?" in again.content.decode()
    assert TrackedTask.objects.count() == 7
    for forged in ("1", "yes", confirmation(asked)[:-2]):
        bulk(alice_client, "untrack", all="1", q="owl", confirm=forged)
        assert TrackedTask.objects.count() == 7


def test_a_link_cannot_slip_fields_into_the_selection_forms(alice_client, foxes_and_owls):
    page = alice_client.get("/gallery/?q=fox&all=1&confirm=1&ids=x&do=untrack").content.decode()
    hidden = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)
    assert ("q", "fox") in hidden
    assert not {name for name, _ in hidden} & {"all", "confirm", "ids", "do"}, hidden


@pytest.mark.django_db(transaction=True)
def test_untracking_says_how_many_images_not_how_many_rows(alice_client, foxes_and_owls):
    ids = foxes_and_owls
    run_worker()  # archived: files and tags are rows too
    alice_client.post(f"/tasks/{ids[1]}/organise/", {"tags": "a, b, c"})
    page = bulk(alice_client, "untrack", ids=[ids[1]]).content.decode()
    assert 'name="next" value="/gallery/?q=fox"' in page  # the language switch goes back there
    response = bulk(alice_client, "untrack", ids=[ids[1]], confirm=confirmation(page))
    assert said(response) == "Stopped tracking 1 image."


def test_tagging_stops_at_twenty_tags_a_task(alice_client, foxes_and_owls):
    ids = foxes_and_owls
    for round_ in range(3):
        names = ", ".join(f"r{round_}t{n}" for n in range(15))
        bulk(alice_client, "tag", ids=[ids[0]], tags=names)
    assert TrackedTask.objects.get(task_id=ids[0]).tags.count() == 20


def test_nothing_selected_is_said_plainly(alice_client, foxes_and_owls):
    response = bulk(alice_client, "favourite")
    assert said(response) == "Select some images first."
    assert marked("favourite") == set()


@pytest.mark.parametrize("action", ["favourite", "hide", "tag", "untrack"])
def test_a_strangers_id_in_the_selection_is_a_404_and_changes_nothing(
    alice_client, bob_client, sandbox, action
):
    (hers,) = gallery_of(alice_client, sandbox, "alice's image")
    his = track_new_task(bob_client, sandbox, prompt="bob's image")
    before = list(TrackedTask.objects.values())
    for ids in ([his], [hers, his], [hers, "no-such-task"]):
        response = bulk(alice_client, action, ids=ids, tags="stolen", confirm="1")
        assert response.status_code == 404, ids
    assert list(TrackedTask.objects.values()) == before
    assert not TrackedTask.objects.get(task_id=hers).tags.exists()


def test_an_unknown_action_or_a_get_is_refused(alice_client, foxes_and_owls):
    assert bulk(alice_client, "delete-everything", all="1").status_code == 404
    assert alice_client.get("/gallery/bulk/").status_code == 405
    assert TrackedTask.objects.count() == 6


def test_it_requires_login(client):
    response = client.post("/gallery/bulk/", {"do": "hide", "all": "1"})
    assert response.status_code == 302 and "/login" in response["Location"]


@pytest.mark.django_db(transaction=True)
def test_the_zip_of_all_matching_holds_every_page_of_the_filter(alice_client, sandbox):
    ids = gallery_of(alice_client, sandbox, "red fox", "owl", "arctic fox", "fox cub")
    TrackedTask.objects.filter(task_id=ids[3]).update(hidden=True)
    run_worker()
    response = alice_client.post(
        "/gallery/download.zip", {"scope": "selected", "all": "1", "q": "fox", "ids": [ids[1]]}
    )
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    images = sorted(n for n in archive.namelist() if n.endswith(".png"))
    assert images == sorted([f"red-fox_{ids[0]}.png", f"arctic-fox_{ids[2]}.png"])
