"""Organising one's tasks: tags (free text, per user, a filter by tag) and the links between a
task and the tasks made from it, drawn only where the gateway states them."""

from __future__ import annotations

import pytest

from tests.conftest import NOVICEZK_TOKEN, TRUEAI_TOKEN, track_new_task, use_gateway
from tests.test_filters import shown
from tracker.models import Tag, TrackedTask
from tracker.tagging import parse

pytestmark = pytest.mark.django_db


def tag(client, task_id: str, text: str):
    return client.post(f"/tasks/{task_id}/organise/", {"tags": text})


def test_alice_tags_a_task_and_filters_by_the_tag(alice_client, sandbox):
    fox = track_new_task(alice_client, sandbox, prompt="a fox")
    owl = track_new_task(alice_client, sandbox, prompt="an owl")
    tag(alice_client, fox, "animals, client work")
    tag(alice_client, owl, "Animals")  # the same tag, whatever its case

    assert set(shown(alice_client, "/?tag=animals")) == {fox, owl}
    assert shown(alice_client, "/?tag=client work") == [fox]
    gallery = alice_client.get("/gallery/?tag=client+work").content.decode()
    assert f"/tasks/{fox}/" in gallery and f"/tasks/{owl}/" not in gallery
    page = alice_client.get(f"/tasks/{fox}/").content.decode()
    assert 'value="animals, client work"' in page
    assert "?tag=client%20work" in page  # each tag links to its filter
    menu = alice_client.get("/").content.decode()
    assert '<option value="animals">' in menu and '<option value="client work">' in menu


def test_retagging_replaces_and_forgets_tags_nobody_carries(alice_client, alice, sandbox):
    fox = track_new_task(alice_client, sandbox, prompt="a fox")
    tag(alice_client, fox, "draft, red")
    tag(alice_client, fox, "final")
    assert [t.name for t in TrackedTask.objects.get(task_id=fox).tags.all()] == ["final"]
    assert list(Tag.objects.filter(user=alice).values_list("name", flat=True)) == ["final"]
    tag(alice_client, fox, "")
    assert not Tag.objects.filter(user=alice).exists()


def test_tags_are_each_users_own(alice_client, bob_client, bob, sandbox):
    fox = track_new_task(alice_client, sandbox, prompt="a fox")
    tag(alice_client, fox, "secret project")
    hers = Tag.objects.get(name="secret project")
    assert bob_client.post(f"/tasks/{fox}/organise/", {"tags": "mine now"}).status_code == 404
    assert "secret project" not in bob_client.get("/").content.decode()
    assert shown(bob_client, "/?tag=secret project") == []
    assert not Tag.objects.filter(user=bob).exists() and hers.tasks.count() == 1


def test_the_tag_text_is_forgiving():
    assert parse("cats, Sunset ,cats，猫、#red\n  big   dog ") == [
        "cats",
        "Sunset",
        "猫",
        "red",
        "big dog",
    ]
    assert parse("x" * 100) == ["x" * Tag.MAX_LENGTH]
    assert len(parse(",".join(f"t{n}" for n in range(50)))) == 20


def test_an_upscale_links_to_the_imagine_it_came_from(alice_client, alice, sandbox):
    use_gateway(alice, sandbox.url, TRUEAI_TOKEN, "raw")
    grid = sandbox.create_task(token=TRUEAI_TOKEN, prompt="a fox")["id"]
    upscale = sandbox.create_task(token=TRUEAI_TOKEN, action="UPSCALE", parent_id=grid)["id"]
    alice_client.post("/", {"ids": f"{grid}\n{upscale}"})

    child_page = alice_client.get(f"/tasks/{upscale}/").content.decode()
    assert "Made from" in child_page and f"/tasks/{grid}/" in child_page
    parent_page = alice_client.get(f"/tasks/{grid}/").content.decode()
    assert "Made from this one" in parent_page and f"/tasks/{upscale}/" in parent_page


def test_novicezk_links_through_message_ids_and_button_hashes(alice_client, alice, sandbox):
    use_gateway(alice, sandbox.url, NOVICEZK_TOKEN, "mj-api-secret")
    grid = sandbox.create_task(token=NOVICEZK_TOKEN, prompt="an owl")
    variation = sandbox.create_task(token=NOVICEZK_TOKEN, action="VARIATION", parent_id=grid["id"])
    stray = sandbox.create_task(token=NOVICEZK_TOKEN, prompt="unrelated")
    alice_client.post("/", {"ids": f"{grid['id']}\n{variation['id']}\n{stray['id']}"})
    row = TrackedTask.objects.get(task_id=grid["id"])
    button = row.properties["messageHash"]
    upscale = sandbox.create_task(
        token=NOVICEZK_TOKEN, action="UPSCALE", made_with=f"MJ::JOB::upsample::2::{button}"
    )
    alice_client.post("/", {"ids": upscale["id"]})

    page = alice_client.get(f"/tasks/{grid['id']}/").content.decode()
    assert f"/tasks/{variation['id']}/" in page and f"/tasks/{upscale['id']}/" in page
    assert f"/tasks/{stray['id']}/" not in page
    assert f"/tasks/{grid['id']}/" in alice_client.get(f"/tasks/{upscale['id']}/").content.decode()


def test_a_link_nobody_states_is_not_drawn(alice_client, sandbox):
    fox = track_new_task(alice_client, sandbox, prompt="a fox")
    owl = track_new_task(alice_client, sandbox, prompt="a fox", action="UPSCALE")
    assert "Related tasks" not in alice_client.get(f"/tasks/{owl}/").content.decode()
    assert "Related tasks" not in alice_client.get(f"/tasks/{fox}/").content.decode()


def test_a_parent_someone_else_tracks_is_not_shown(alice_client, alice, bob_client, bob, sandbox):
    for user in (alice, bob):
        use_gateway(user, sandbox.url, TRUEAI_TOKEN, "raw")
    grid = sandbox.create_task(token=TRUEAI_TOKEN, prompt="bob's fox")["id"]
    bob_client.post("/", {"ids": grid})
    upscale = sandbox.create_task(token=TRUEAI_TOKEN, action="UPSCALE", parent_id=grid)["id"]
    alice_client.post("/", {"ids": upscale})
    assert TrackedTask.objects.filter(task_id=upscale, user=alice).exists()
    assert f"/tasks/{grid}/" not in alice_client.get(f"/tasks/{upscale}/").content.decode()


def test_a_huge_tag_text_is_cut_not_chewed():
    assert len(parse("tag, " * 600_000)) == 1
    assert len(parse(", ".join(f"t{n}" for n in range(600_000)))) == 20


def test_a_gallery_stars_reply_is_a_star_alone(alice_client, sandbox):
    fox = track_new_task(alice_client, sandbox, prompt="a fox")
    htmx = {"HX-Request": "true"}
    tile = alice_client.post(
        f"/tasks/{fox}/organise/", {"favourite": "1", "compact": "1"}, headers=htmx
    ).content.decode()
    assert "★" in tile and "mark-hide" not in tile
    page = alice_client.post(f"/tasks/{fox}/organise/", {"favourite": "0"}, headers=htmx)
    assert "mark-hide" in page.content.decode()
