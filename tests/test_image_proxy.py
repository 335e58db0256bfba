"""/mj/image/<id>: the owner's image, streamed from the configured gateway only."""

from __future__ import annotations

import httpx
import pytest
from django.http import StreamingHttpResponse

from tests.conftest import track_new_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def finished(alice_client, sandbox):
    return track_new_task(alice_client, sandbox, prompt="A Red Fox, in the snow!")


def test_it_requires_login(client):
    response = client.get("/mj/image/1712158011464906")
    assert response.status_code == 302


def test_it_streams_the_gateways_bytes(alice_client, finished, sandbox):
    response = alice_client.get(f"/mj/image/{finished}")
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)  # never buffered whole
    assert response["Content-Type"] == "image/png"
    body = b"".join(response.streaming_content)
    assert body == httpx.get(f"{sandbox.url}/mj/image/{finished}").content
    assert response["Content-Disposition"].startswith("inline")


def test_download_sends_a_readable_filename(alice_client, finished):
    response = alice_client.get(f"/mj/image/{finished}?download=1")
    assert response["Content-Disposition"] == (
        f'attachment; filename="a-red-fox-in-the-snow_{finished}.png"'
    )
    b"".join(response.streaming_content)


def test_a_thumbnail_is_never_made_from_a_download_in_the_request(alice_client, finished, sandbox):
    sandbox.reset_stats()
    response = alice_client.get(f"/mj/image/{finished}/thumb")
    assert response["Content-Type"] == "image/svg+xml"
    assert response["Cache-Control"] == "private, no-store"
    assert sandbox.stats() == {}  # the archive worker makes it, from its own copy


def test_a_task_without_an_image_explains_itself(alice_client, sandbox):
    task = sandbox.create_task(step_seconds=60)
    alice_client.post("/", {"ids": task["id"]})
    page = alice_client.get(f"/mj/image/{task['id']}")
    assert page.status_code == 502
    assert b"The gateway has no image for this task yet." in page.content
    img = alice_client.get(f"/mj/image/{task['id']}", headers={"Sec-Fetch-Dest": "image"})
    assert img["Content-Type"] == "image/svg+xml"


def test_it_only_ever_asks_the_configured_gateway(alice_client, alice, finished, sandbox):
    from tracker.models import TrackedTask

    # Even if a stored imageUrl pointed elsewhere, the proxy asks the connection's own host.
    TrackedTask.objects.filter(user=alice).update(image_url="http://169.254.169.254/latest")
    response = alice_client.get(f"/mj/image/{finished}")
    assert response.status_code == 200
    b"".join(response.streaming_content)


def test_an_unreachable_gateway_is_a_page_not_a_crash(alice_client, alice, finished, settings):
    from tracker.models import Gateway

    settings.MJDASH_GATEWAY_URL = "http://127.0.0.1:9"  # the site's gateway moved and is down
    Gateway.objects.update(base_url="http://127.0.0.1:9")
    response = alice_client.get(f"/mj/image/{finished}")
    assert response.status_code == 502
    assert b"unreachable" in response.content
