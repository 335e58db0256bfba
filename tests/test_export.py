"""Alice takes her list away: the dashboard's current filter as a CSV or JSON download."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import ALICE_TOKEN, track_new_task
from tracker import export, tagging
from tracker.models import TrackedTask

pytestmark = pytest.mark.django_db


@pytest.fixture
def mixed(alice_client, alice, sandbox):
    """A done fox tagged and starred, a failed cat, and an owl whose prompt is a formula."""
    fox = track_new_task(alice_client, sandbox, prompt="A red FOX", action="IMAGINE")
    cat = track_new_task(alice_client, sandbox, prompt="a cat", outcome="failure")
    owl = track_new_task(alice_client, sandbox, prompt="=HYPERLINK(1)")
    row = TrackedTask.objects.get(task_id=fox)
    tagging.replace(row, "wild, red")
    TrackedTask.objects.filter(pk=row.pk).update(favourite=True, note="keep", seed="42")
    return {"fox": fox, "cat": cat, "owl": owl}


def download(client, url: str):
    response = client.get(url)
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-store"
    assert response["Content-Disposition"].startswith('attachment; filename="mjdash-tasks-')
    return b"".join(response.streaming_content).decode("utf-8-sig")


def csv_rows(client, url: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(download(client, url))))


def test_it_requires_login(client):
    for url in ("/export.csv", "/export.json"):
        assert client.get(url).status_code == 302


def test_json_is_every_stored_field_of_the_shown_rows(alice_client, mixed):
    tasks = json.loads(download(alice_client, "/export.json"))
    assert {t["id"] for t in tasks} == set(mixed.values())
    fox = next(t for t in tasks if t["id"] == mixed["fox"])
    stored = TrackedTask.objects.get(task_id=mixed["fox"])
    assert fox["prompt"] == stored.prompt == "A red FOX"
    assert fox["status"] == "SUCCESS" and fox["action"] == "IMAGINE"
    assert fox["tags"] == ["red", "wild"]
    assert (fox["favourite"], fox["hidden"], fox["note"], fox["seed"]) == (
        True,
        False,
        "keep",
        "42",
    )
    assert fox["submitted_at"] == stored.submitted_at.isoformat()
    assert fox["image_urls"] == stored.image_urls
    assert fox["archived"] is False and fox["archived_at"] is None and fox["kept_files"] == 0
    assert "raw" not in fox and fox["gateway"] == stored.gateway.display_url


def test_the_export_never_carries_the_gateway_token(alice_client, mixed):
    for url in ("/export.csv", "/export.json"):
        assert ALICE_TOKEN not in download(alice_client, url)


def test_csv_holds_the_same_rows_as_text(alice_client, mixed):
    rows = {r["id"]: r for r in csv_rows(alice_client, "/export.csv")}
    assert set(rows) == set(mixed.values())
    fox = rows[mixed["fox"]]
    assert (fox["tags"], fox["favourite"], fox["seed"]) == ("red, wild", "true", "42")
    assert rows[mixed["cat"]]["status"] == "FAILURE"


def test_a_prompt_that_is_a_formula_stays_text_in_the_csv(alice_client, mixed):
    rows = {r["id"]: r for r in csv_rows(alice_client, "/export.csv")}
    assert rows[mixed["owl"]]["prompt"] == "'=HYPERLINK(1)"
    owl = next(
        t for t in json.loads(download(alice_client, "/export.json")) if t["id"] == mixed["owl"]
    )
    assert owl["prompt"] == "=HYPERLINK(1)"  # JSON is data, not a spreadsheet


def test_look_alike_formulas_stay_text_too(alice_client, mixed):
    for prompt in ("＝1+1", " =1+1", "\u3000@SUM(A1)", "－2"):
        TrackedTask.objects.filter(task_id=mixed["owl"]).update(prompt=prompt)
        rows = {r["id"]: r for r in csv_rows(alice_client, "/export.csv")}
        assert rows[mixed["owl"]]["prompt"] == "'" + prompt


def test_only_the_gateways_bookkeeping_leaves_not_its_hooks(alice_client, mixed):
    TrackedTask.objects.filter(task_id=mixed["fox"]).update(
        properties={
            "finalPrompt": "a fox",
            "messageHash": "abc",
            "notifyHook": "https://hook.example/SECRET1",
            "nested": {"notifyHook": "https://hook.example/SECRET2"},
            "callbackUrl": "https://x.example/SECRET3",
            "customId": {"not": "a plain value SECRET4"},
        }
    )
    for url in ("/export.csv", "/export.json"):
        assert "SECRET" not in download(alice_client, url)
    fox = next(
        t for t in json.loads(download(alice_client, "/export.json")) if t["id"] == mixed["fox"]
    )
    assert fox["properties"] == {"finalPrompt": "a fox", "messageHash": "abc"}


def test_the_filters_are_the_dashboards(alice_client, mixed):
    assert [r["id"] for r in csv_rows(alice_client, "/export.csv?status=failed")] == [mixed["cat"]]
    tagged = json.loads(download(alice_client, "/export.json?tag=wild&fav=1"))
    assert [t["id"] for t in tagged] == [mixed["fox"]]
    TrackedTask.objects.filter(task_id=mixed["cat"]).update(hidden=True)
    assert mixed["cat"] not in download(alice_client, "/export.json")
    assert [t["id"] for t in json.loads(download(alice_client, "/export.json?hidden=1"))] == [
        mixed["cat"]
    ]


def test_a_bad_filter_value_is_ignored(alice_client, mixed):
    tasks = json.loads(download(alice_client, "/export.json?since=yesterday&sort=zebra"))
    assert len(tasks) == 3


def test_nothing_matching_is_an_empty_list(alice_client, mixed):
    assert json.loads(download(alice_client, "/export.json?q=zebra")) == []
    assert csv_rows(alice_client, "/export.csv?q=zebra") == []


def test_bob_exports_only_his_own(bob_client, mixed):
    assert json.loads(download(bob_client, "/export.json")) == []


def test_the_dashboard_links_to_the_export_of_what_it_shows(alice_client, mixed):
    html = alice_client.get("/?status=done&q=fox").content.decode()
    assert 'href="/export.csv?status=done&amp;q=fox"' in html
    assert 'href="/export.json?status=done&amp;q=fox"' in html


def test_many_rows_take_a_fixed_number_of_queries(alice, mixed):
    rows = TrackedTask.objects.filter(user=alice)
    with CaptureQueriesContext(connection) as few:
        list(export.dicts(rows[:1]))
    with CaptureQueriesContext(connection) as many:
        assert len(list(export.dicts(rows))) == 3
    assert len(many) == len(few)
