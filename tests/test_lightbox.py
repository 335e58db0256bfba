"""Alice opens an image large and steps through her filtered gallery, page after page."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import run_worker, track_new_task
from tracker.models import TrackedTask

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


def gallery_of(client, sandbox, *prompts: str) -> list[str]:
    """Track one finished image per prompt; the first is the newest, a minute apart."""
    ids = [track_new_task(client, sandbox, prompt=prompt) for prompt in prompts]
    now = timezone.now()
    for age, task_id in enumerate(ids):
        TrackedTask.objects.filter(task_id=task_id).update(finished_at=now - timedelta(minutes=age))
    return ids


def tiles(client, query: str = "") -> list[str]:
    """The task IDs on every page of the gallery, in order, as the tiles show them."""
    found, page = [], 1
    while True:
        body = client.get(f"/gallery/?{query}&page={page}").content.decode()
        found += re.findall(r'<li class="tile" data-task="([^"]+)"', body)
        if f"page={page + 1}" not in body:
            return found
        page += 1


def lightbox(client, task_id: str, query: str = "") -> dict:
    """What the lightbox shows for one image: the neighbours it links to, its position."""
    response = client.get(f"/gallery/{task_id}/view/?{query}", headers=HTMX)
    assert response.status_code == 200, response.status_code
    body = response.content.decode()
    link = r'href="/gallery/([^/]+)/view/[^"]*"[^>]*data-lightbox-{}'
    prev, following = (re.search(link.format(name), body) for name in ("prev", "next"))
    return {
        "prev": prev and prev.group(1),
        "next": following and following.group(1),
        "position": re.search(r'class="lb-pos">([^<]*)<', body).group(1).strip(),
        "body": body,
    }


def walk(client, first: str, query: str = "") -> list[str]:
    """Press → from `first` until the lightbox says there is no next image."""
    seen = [first]
    while (step := lightbox(client, seen[-1], query)["next"]) is not None:
        seen.append(step)
        assert len(seen) < 100, "the lightbox went round in circles"
    return seen


def test_next_crosses_from_the_last_image_of_a_page_to_the_first_of_the_next(
    alice_client, sandbox, monkeypatch
):
    monkeypatch.setattr("tracker.views.gallery.PAGE_SIZE", 2)
    ids = gallery_of(alice_client, sandbox, "one", "two", "three", "four", "five")
    first_page = alice_client.get("/gallery/").content.decode()
    assert "Page 1 of 3" in first_page
    assert re.findall(r'data-task="([^"]+)"', first_page) == ids[:2]

    last_of_page_one = lightbox(alice_client, ids[1])
    assert last_of_page_one["next"] == ids[2]  # on page 2
    assert last_of_page_one["prev"] == ids[0]
    assert last_of_page_one["position"] == "2 of 5"
    assert lightbox(alice_client, ids[2])["prev"] == ids[1]  # and back again


def test_the_first_image_has_no_previous_and_the_last_no_next(alice_client, sandbox):
    ids = gallery_of(alice_client, sandbox, "newest", "middle", "oldest")
    first, last = lightbox(alice_client, ids[0]), lightbox(alice_client, ids[-1])
    assert first["prev"] is None and first["next"] == ids[1]
    assert last["next"] is None and last["prev"] == ids[1]
    assert "data-lightbox-prev" not in first["body"]
    assert "data-lightbox-next" not in last["body"]
    assert last["position"] == "3 of 3"


def test_it_steps_only_through_images_that_match_the_filters(alice_client, sandbox):
    ids = gallery_of(alice_client, sandbox, "red fox", "owl", "arctic fox", "cat", "fox cub")
    TrackedTask.objects.filter(task_id=ids[4]).update(hidden=True)
    foxes = [ids[0], ids[2]]  # the fox cub is hidden, so it is not among them
    assert tiles(alice_client, "q=fox") == foxes
    assert walk(alice_client, ids[0], "q=fox") == foxes
    owl = lightbox(alice_client, ids[1], "q=fox")  # opened from a link: still finds its place
    assert (owl["prev"], owl["next"]) == (ids[0], ids[2])
    # The neighbours' links keep the filters, so the next step is filtered too.
    assert f'href="/gallery/{ids[2]}/view/?q=fox"' in owl["body"]
    hidden_too = "q=fox&hidden=1"
    assert walk(alice_client, ids[4], hidden_too) == [ids[4]]


@pytest.mark.parametrize("sort", ["", "finished", "-submitted", "added"])
def test_walking_the_lightbox_visits_the_gallery_in_its_order(
    alice_client, sandbox, monkeypatch, sort
):
    """Ties and missing times included: each image once, in the order the pages show."""
    monkeypatch.setattr("tracker.views.gallery.PAGE_SIZE", 3)
    ids = gallery_of(alice_client, sandbox, *(f"image {n}" for n in range(7)))
    tie = timezone.now() - timedelta(hours=1)
    TrackedTask.objects.filter(task_id__in=ids[2:5]).update(finished_at=tie, submitted_at=tie)
    TrackedTask.objects.filter(task_id=ids[5]).update(finished_at=None, submitted_at=None)
    query = f"sort={sort}"
    order = tiles(alice_client, query)
    assert sorted(order) == sorted(ids)
    assert walk(alice_client, order[0], query) == order
    backwards = [order[-1]]
    while (step := lightbox(alice_client, backwards[-1], query)["prev"]) is not None:
        backwards.append(step)
    assert backwards == order[::-1]


def test_it_stays_quick_with_ten_thousand_images(
    alice_client, sandbox, django_assert_max_num_queries
):
    (model,) = gallery_of(alice_client, sandbox, "the model row")
    row = TrackedTask.objects.get(task_id=model)
    now = timezone.now()
    copies = []
    for n in range(10_000):
        row.pk, row.task_id = None, f"9{n:015d}"
        row.finished_at = now - timedelta(seconds=n + 1)
        copies.append(TrackedTask(**{f.attname: getattr(row, f.attname) for f in row._meta.fields}))
    TrackedTask.objects.bulk_create(copies, batch_size=1000)
    middle = copies[5_000].task_id
    started = time.monotonic()
    with django_assert_max_num_queries(12):
        shown = lightbox(alice_client, middle)
    assert time.monotonic() - started < 1.0
    assert (shown["prev"], shown["next"]) == (copies[4_999].task_id, copies[5_001].task_id)
    assert shown["position"] == "5002 of 10001"


def test_the_star_in_the_lightbox_favourites_and_tells_the_tile(alice_client, sandbox):
    (task_id,) = gallery_of(alice_client, sandbox, "a heron")
    response = alice_client.post(f"/gallery/{task_id}/view/", {"favourite": "1"}, headers=HTMX)
    assert response.status_code == 200
    assert TrackedTask.objects.get(task_id=task_id).favourite
    body = response.content.decode()
    assert 'aria-pressed="true"' in body
    assert f'<template data-tile-marks="marks-{task_id}">' in body  # the tile's new mark
    without_js = alice_client.post(f"/gallery/{task_id}/view/?q=heron", {"favourite": "0"})
    assert without_js.status_code == 302
    assert without_js["Location"] == f"/gallery/{task_id}/view/?q=heron"
    assert not TrackedTask.objects.get(task_id=task_id).favourite


def test_without_javascript_the_lightbox_is_a_page_with_real_links(alice_client, sandbox):
    ids = gallery_of(alice_client, sandbox, "first light", "second light")
    body = alice_client.get(f"/gallery/{ids[0]}/view/").content.decode()
    assert "<html" in body and 'class="lightbox-page"' in body
    assert f'href="/gallery/{ids[1]}/view/"' in body
    assert f'href="/tasks/{ids[0]}/"' in body  # open the task
    assert f'href="/mj/image/{ids[0]}?download=1"' in body
    assert f'hx-get="/tasks/{ids[0]}/seed/"' in body  # the seed, on demand
    gallery = alice_client.get("/gallery/").content.decode()
    assert f'href="/tasks/{ids[0]}/" data-lightbox="/gallery/{ids[0]}/view/?"' in gallery


def test_a_stranger_gets_404_and_changes_nothing(alice_client, bob_client, sandbox):
    (task_id,) = gallery_of(alice_client, sandbox, "alice only")
    for response in (
        bob_client.get(f"/gallery/{task_id}/view/", headers=HTMX),
        bob_client.get(f"/gallery/{task_id}/view/"),
        bob_client.post(f"/gallery/{task_id}/view/", {"favourite": "1"}, headers=HTMX),
    ):
        assert response.status_code == 404
        assert b"alice only" not in response.content
    assert not TrackedTask.objects.get(task_id=task_id).favourite


def test_it_requires_login(client, alice_client, sandbox):
    (task_id,) = gallery_of(alice_client, sandbox, "private")
    client.logout()
    assert client.get(f"/gallery/{task_id}/view/").status_code == 302


@pytest.mark.django_db(transaction=True)
def test_grids_as_four_tiles_are_remembered_and_the_lightbox_steps_through_them(
    alice_client, sandbox
):
    grid = track_new_task(alice_client, sandbox, prompt="a grid", action="IMAGINE")
    upscale = track_new_task(alice_client, sandbox, prompt="an upscale", action="UPSCALE")
    TrackedTask.objects.filter(task_id=upscale).update(
        finished_at=timezone.now() - timedelta(hours=1)
    )
    run_worker()
    assert tiles(alice_client) == [grid, upscale]  # one tile per task by default

    response = alice_client.post("/gallery/layout/", {"quadrants": "split", "next": "/gallery/?q="})
    assert response.status_code == 302 and response["Location"] == "/gallery/?q="
    assert response.cookies["mjdash_quadrants"].value == "split"
    body = alice_client.get("/gallery/").content.decode()  # the cookie is kept
    assert tiles(alice_client) == [grid] * 4 + [upscale]
    for part in (1, 2, 3, 4):
        assert f'src="/mj/image/{grid}/{part}/thumb"' in body
    assert body.count(f'id="marks-{grid}"') == 1  # one star per task, not four

    shown = lightbox(alice_client, grid, "part=2")
    assert f'src="/mj/image/{grid}/2"' in shown["body"]
    assert f'href="/gallery/{grid}/view/?part=3"' in shown["body"]  # → is the grid's third
    last = lightbox(alice_client, grid, "part=4")
    assert last["next"] == upscale
    assert lightbox(alice_client, upscale)["prev"] == grid
    assert f'href="/gallery/{grid}/view/?part=4"' in lightbox(alice_client, upscale)["body"]

    alice_client.post("/gallery/layout/", {"quadrants": "grid"})
    assert tiles(alice_client) == [grid, upscale]
    assert lightbox(alice_client, upscale)["prev"] == grid
    assert f'href="/gallery/{grid}/view/"' in lightbox(alice_client, upscale)["body"]


def test_a_strange_part_number_shows_the_whole_image(alice_client, sandbox):
    (fox,) = gallery_of(alice_client, sandbox, "fox")
    for part in ("²", "9" * 5000, "0", "7", "-1"):
        response = alice_client.get(f"/gallery/{fox}/view/?part={part}")
        assert response.status_code == 200, part
        assert response["Vary"].count("HX-Request") == 1
