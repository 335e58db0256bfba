"""The whole user flow against every kind of gateway: paste → live progress → finished →
detail with seed → gallery → image. new-api, novicezk and trueai each speak their own dialect
(auth, nulls, not-found answers, image hosting); mjdash must read them all."""

from __future__ import annotations

import pytest
from django.utils.html import strip_tags

from tests.conftest import (
    ALICE_TOKEN,
    NOVICEZK_TOKEN,
    SPA_TOKEN,
    TRUEAI_TOKEN,
    run_worker,
    use_gateway,
    wait_until,
)
from tracker.models import TrackedTask

pytestmark = pytest.mark.django_db(transaction=True)
POLL = {"HX-Request": "true"}

GATEWAYS = {
    "new-api": (ALICE_TOKEN, "bearer"),
    "novicezk": (NOVICEZK_TOKEN, "mj-api-secret"),
    "trueai": (TRUEAI_TOKEN, "raw"),
}


def run_the_flow(client, sandbox, token: str, **task_fields) -> tuple[TrackedTask, str]:
    """Paste, poll to the end, then open detail, seed, gallery and image. Returns the row and
    the seed panel's text."""
    task_id = sandbox.create_task(token=token, step_seconds=0.2, **task_fields)["id"]
    client.post("/", {"ids": task_id})
    seen = set()

    def finished():
        response = client.get("/tasks/list/", headers=POLL)
        seen.add(TrackedTask.objects.get(task_id=task_id).status)
        return response.status_code == 286

    wait_until(finished, timeout=15, every=0.1)
    row = TrackedTask.objects.get(task_id=task_id)
    assert len(seen) >= 2, f"never saw the task move: {seen}"

    detail = client.get(f"/tasks/{task_id}/")
    assert detail.status_code == 200 and b"Done" in detail.content
    seed = client.get(f"/tasks/{task_id}/seed/", headers=POLL).content.decode()
    gallery = client.get("/gallery/").content.decode()
    assert f"/tasks/{task_id}/" in gallery
    image = client.get(f"/mj/image/{task_id}")
    assert image.status_code == 200, image.content[:300]
    assert image["Content-Type"] == "image/png"
    assert b"".join(image.streaming_content)[:4] == b"\x89PNG"
    run_worker()  # the archive keeps it; the thumbnail comes from there
    thumb = client.get(f"/mj/image/{task_id}/thumb")
    assert thumb["Content-Type"] == "image/webp"
    row.refresh_from_db()
    assert row.archived_at is not None, row.archive_error
    return row, seed


@pytest.mark.parametrize("gateway", GATEWAYS)
def test_the_full_flow_on_each_gateway(alice_client, alice, sandbox, gateway):
    token, auth_style = GATEWAYS[gateway]
    use_gateway(alice, sandbox.url, token, auth_style)
    row, seed = run_the_flow(alice_client, sandbox, token, prompt=f"a fox via {gateway}")
    assert (row.status, row.percent, row.prompt) == ("SUCCESS", 100, f"a fox via {gateway}")
    assert row.finished_at is not None
    if gateway == "novicezk":  # the open-source edition has no image-seed endpoint
        assert "do not offer seeds" in seed and "Try again" not in seed
    else:
        assert 'class="seed"' in seed


@pytest.mark.parametrize("shape", ["absent", "null", "empty", "strings", "objects"])
def test_every_image_urls_shape_flows_through(alice_client, sandbox, shape):
    row, _ = run_the_flow(alice_client, sandbox, ALICE_TOKEN, image_urls_shape=shape)
    expected = 4 if shape in ("strings", "objects") else 0
    assert len(row.image_urls) == expected
    assert all(url.startswith("http") for url in row.image_urls)


@pytest.mark.parametrize("gateway", ["new-api", "trueai"])
def test_a_video_task_keeps_its_mp4_links(alice_client, alice, sandbox, gateway):
    token, auth_style = GATEWAYS[gateway]
    use_gateway(alice, sandbox.url, token, auth_style)
    shape = {"image_urls_shape": "strings"} if gateway == "new-api" else {}
    row, _ = run_the_flow(alice_client, sandbox, token, action="VIDEO", **shape)
    assert row.video_url.endswith(".mp4") or row.video_url.endswith(".png")
    assert row.image_urls and all(".mp4" in url for url in row.image_urls)
    page = alice_client.get(f"/tasks/{row.task_id}/").content.decode()
    assert "<video" in page and f"/mj/image/{row.task_id}/11" in page


def test_an_unknown_id_on_novicezk_and_trueai_is_not_found_not_an_error(
    alice_client, alice, sandbox
):
    for gateway in ("novicezk", "trueai"):
        token, auth_style = GATEWAYS[gateway]
        use_gateway(alice, sandbox.url, token, auth_style)
        alice_client.post("/", {"ids": f"170000000000{len(gateway):04d}"})
    rows = TrackedTask.objects.filter(user=alice)
    assert rows.count() == 2
    assert all(r.missing_at_gateway and not r.last_error for r in rows)


def test_trueai_refuses_a_bearer_prefix_and_says_so(alice_client, alice, sandbox):
    use_gateway(alice, sandbox.url, TRUEAI_TOKEN, "bearer")
    response = alice_client.post("/settings/test/", headers=POLL)
    assert "The gateway rejected the API token (Authorization header missing.)." in strip_tags(
        response.content.decode()
    )  # the gateway's own words, marked as its own


def test_a_one_api_without_midjourney_is_named_as_such(alice_client, alice, sandbox):
    use_gateway(alice, sandbox.url, SPA_TOKEN)
    alice_client.post("/", {"ids": "1712158011464906"})
    row = TrackedTask.objects.get(user=alice)
    assert "web page, not the Midjourney API" in row.last_error
    assert not row.missing_at_gateway  # nothing was learned about the task itself


def test_a_failure_on_novicezk_shows_its_reason_and_stops(alice_client, alice, sandbox):
    use_gateway(alice, sandbox.url, NOVICEZK_TOKEN, "mj-api-secret")
    task = sandbox.create_task(token=NOVICEZK_TOKEN, outcome="FAILURE", fail_reason="任务超时")
    alice_client.post("/", {"ids": task["id"]})
    row = TrackedTask.objects.get(user=alice)
    assert (row.status, row.progress, row.fail_reason) == ("FAILURE", "", "任务超时")
    assert row.finished
    assert alice_client.get("/tasks/list/", headers=POLL).status_code == 286
