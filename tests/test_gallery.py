"""Alice browses her finished images, newest first."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tracker.models import TrackedTask

pytestmark = pytest.mark.django_db


def test_it_requires_login(client):
    assert client.get("/gallery/").status_code == 302


def test_an_empty_gallery_says_how_it_fills(alice_client):
    assert b"No finished images yet." in alice_client.get("/gallery/").content


def test_it_shows_only_finished_images_newest_first(alice_client, alice, sandbox):
    older = sandbox.create_task(prompt="older picture")
    newer = sandbox.create_task(prompt="newer picture")
    failed = sandbox.create_task(outcome="FAILURE", prompt="failed picture")
    running = sandbox.create_task(step_seconds=60, prompt="running picture")
    alice_client.post("/", {"ids": " ".join(t["id"] for t in (older, newer, failed, running))})
    TrackedTask.objects.filter(task_id=older["id"]).update(
        finished_at=timezone.now() - timedelta(days=1)
    )
    body = alice_client.get("/gallery/").content.decode()
    assert body.index("newer picture") < body.index("older picture")
    assert "failed picture" not in body and "running picture" not in body
    assert f'href="/tasks/{newer["id"]}/"' in body
    assert f"/mj/image/{newer['id']}?download=1" in body


def test_it_pages_through_many_images(alice_client, alice, sandbox):
    ids = [sandbox.create_task()["id"] for _ in range(56)]
    alice_client.post("/", {"ids": "\n".join(ids)})
    first = alice_client.get("/gallery/").content.decode()
    assert "Page 1 of 2" in first and first.count('class="caption"') == 50
    second = alice_client.get("/gallery/?page=2").content.decode()
    assert second.count('class="caption"') == 6


def test_a_stranger_sees_none_of_alices_images(alice_client, bob_client, sandbox):
    task = sandbox.create_task(prompt="alice only")
    alice_client.post("/", {"ids": task["id"]})
    assert b"alice only" not in bob_client.get("/gallery/").content
