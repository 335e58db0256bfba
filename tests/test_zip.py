"""Bulk download: a streamed ZIP of the gallery, a selection, or what is new, with metadata."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest
from django.http import StreamingHttpResponse

from tests.conftest import run_worker, track_new_task
from tracker.models import TrackedTask

pytestmark = pytest.mark.django_db(transaction=True)


def download(client, **form) -> zipfile.ZipFile:
    response = client.post("/gallery/download.zip", form)
    assert response.status_code == 200, response.content[:500]
    assert isinstance(response, StreamingHttpResponse)  # never built whole
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="mjdash-')
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


@pytest.fixture
def two_archived(alice_client, sandbox):
    first = track_new_task(alice_client, sandbox, prompt="first fox", action="IMAGINE")
    second = track_new_task(alice_client, sandbox, prompt="second owl", action="UPSCALE")
    run_worker()
    return first, second


def test_the_whole_gallery_as_a_zip_with_metadata(alice_client, two_archived):
    first, second = two_archived
    archive = download(alice_client, scope="all")
    names = archive.namelist()
    assert f"first-fox_{first}.png" in names
    assert f"second-owl_{second}.png" in names
    assert {"metadata.json", "metadata.csv"} <= set(names)
    assert "errors.txt" not in names
    assert archive.testzip() is None  # every entry's CRC checks out
    data = archive.read(f"first-fox_{first}.png")
    assert data.startswith(b"\x89PNG")
    records = {r["id"]: r for r in json.loads(archive.read("metadata.json"))}
    row = TrackedTask.objects.get(task_id=first)
    assert records[first]["prompt"] == "first fox"
    assert records[first]["action"] == "IMAGINE"
    assert records[first]["status"] == "SUCCESS"
    assert records[first]["finishTime"] == row.finished_at.isoformat()
    assert records[first]["sourceUrl"] == row.image_url
    assert records[first]["files"] == [f"first-fox_{first}.png"]
    table = list(csv.DictReader(io.StringIO(archive.read("metadata.csv").decode())))
    assert {r["id"] for r in table} == {first, second}
    assert {r["prompt"] for r in table} == {"first fox", "second owl"}


def test_quadrants_instead_of_grids_when_asked(alice_client, two_archived):
    first, second = two_archived
    names = download(alice_client, scope="all", quadrants="1").namelist()
    assert [n for n in names if first in n] == [f"first-fox_{first}_{n}.png" for n in (1, 2, 3, 4)]
    assert f"second-owl_{second}.png" in names  # an upscale is one image either way


def test_only_new_leaves_out_what_was_downloaded_before(alice_client, sandbox, two_archived):
    download(alice_client, scope="all")
    assert not TrackedTask.objects.filter(downloaded_at=None).exists()
    third = track_new_task(alice_client, sandbox, prompt="third cat")
    run_worker()
    names = download(alice_client, scope="new").namelist()
    assert [n for n in names if n.endswith(".png")] == [f"third-cat_{third}.png"]
    response = alice_client.post("/gallery/download.zip", {"scope": "new"}, follow=True)
    assert "Nothing new to download" in response.content.decode()


def test_a_selection(alice_client, two_archived):
    first, second = two_archived
    names = download(alice_client, scope="selected", ids=[second]).namelist()
    assert [n for n in names if n.endswith(".png")] == [f"second-owl_{second}.png"]


def test_an_unarchived_image_is_fetched_and_archived_on_the_way(alice_client, sandbox):
    task_id = track_new_task(alice_client, sandbox, prompt="late")
    names = download(alice_client, scope="all").namelist()
    assert f"late_{task_id}.png" in names
    assert TrackedTask.objects.get(task_id=task_id).archived_at is not None


def test_an_image_that_cannot_be_had_is_listed_in_errors_txt(alice_client, sandbox):
    good = track_new_task(alice_client, sandbox, prompt="good")
    run_worker()
    gone = track_new_task(alice_client, sandbox, prompt="gone")
    sandbox.fault("image", "expired", status=404)
    archive = download(alice_client, scope="all")
    assert f"good_{good}.png" in archive.namelist()
    errors = archive.read("errors.txt").decode()
    assert gone in errors and "no longer available" in errors
    assert [r["id"] for r in json.loads(archive.read("metadata.json"))] == [good]


def test_a_stranger_cannot_zip_someone_elses_image(alice_client, bob_client, two_archived):
    first, _ = two_archived
    response = bob_client.post("/gallery/download.zip", {"scope": "selected", "ids": [first]})
    assert response.status_code == 404
    mixed = alice_client.post(
        "/gallery/download.zip", {"scope": "selected", "ids": [first, "1234567890123456"]}
    )
    assert mixed.status_code == 404


def test_nothing_selected_says_so(alice_client, two_archived):
    response = alice_client.post("/gallery/download.zip", {"scope": "selected"}, follow=True)
    assert "Tick the images you want" in response.content.decode()


def test_all_means_the_gallery_as_shown_under_its_filter(alice_client, two_archived):
    first, second = two_archived
    names = download(alice_client, scope="all", q="fox").namelist()
    assert [n for n in names if n.endswith(".png")] == [f"first-fox_{first}.png"]
