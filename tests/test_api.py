"""Alice's script talks to mjdash: a token made on Settings, then the JSON API with it."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, get_resolver

from tests.conftest import BOB_TOKEN, track_new_task
from tracker import apitokens, tagging
from tracker.models import AccessToken, TrackedTask

pytestmark = pytest.mark.django_db


def make_token(client, name: str = "my script") -> str:
    """Make a token on the Settings page, as alice would, and read it off the page."""
    response = client.post("/settings/tokens/", {"name": name})
    assert response.status_code == 200
    return re.search(r'<pre id="new-token">(mjd_[\w-]+)</pre>', response.content.decode())[1]


@pytest.fixture
def token(alice_client) -> str:
    return make_token(alice_client)


@pytest.fixture
def api(token) -> Client:
    """A client that holds no session at all, only the token, as a script would."""
    return Client(headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def mixed(alice_client, alice, sandbox):
    """A done fox tagged "wild", a failed cat, and a done owl upscale."""
    fox = track_new_task(alice_client, sandbox, prompt="A red FOX", action="IMAGINE")
    cat = track_new_task(alice_client, sandbox, prompt="a cat", outcome="failure")
    owl = track_new_task(alice_client, sandbox, prompt="an owl", action="UPSCALE")
    tagging.replace(TrackedTask.objects.get(task_id=fox), "wild")
    return {"fox": fox, "cat": cat, "owl": owl}


def error_of(response, status: int) -> str:
    """The JSON error a failed call carries, checked for its shape and status."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    body = response.json()["error"]
    assert body["status"] == status
    return body["message"]


# Tokens, on the Settings page


def test_a_token_is_shown_once_and_only_its_hash_is_stored(alice_client, alice):
    response = alice_client.post("/settings/tokens/", {"name": "backup job"})
    assert response["Cache-Control"] == "private, no-store"
    token = re.search(r"mjd_[\w-]{40,}", response.content.decode())[0]
    row = AccessToken.objects.get(user=alice)
    assert row.name == "backup job" and token.startswith(row.prefix)
    assert len(row.digest) == 64 and token not in row.digest
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)  # every table, sessions included
    assert token not in dump.getvalue()
    page = alice_client.get("/settings/").content.decode()
    assert token not in page and row.prefix in page and "backup job" in page


def test_the_settings_page_lists_when_a_token_was_last_used(alice_client, token, api):
    assert "never used" in alice_client.get("/settings/").content.decode()
    api.get("/api/tasks/")
    assert AccessToken.objects.get().last_used_at is not None
    assert "last used" in alice_client.get("/settings/").content.decode()


def test_last_used_is_written_at_most_once_a_minute(api):
    api.get("/api/tasks/")
    first = AccessToken.objects.get().last_used_at
    api.get("/api/tasks/")
    assert AccessToken.objects.get().last_used_at == first


def test_a_revoked_token_stops_working_at_once(alice_client, token, api):
    assert api.get("/api/tasks/").status_code == 200
    row = AccessToken.objects.get()
    response = alice_client.post("/settings/tokens/revoke/", {"token": row.pk}, follow=True)
    assert "revoked" in response.content.decode()
    assert AccessToken.objects.get().revoked_at is not None
    assert error_of(api.get("/api/tasks/"), 401)
    assert row.prefix not in alice_client.get("/settings/").content.decode()


def test_bob_cannot_revoke_alices_token(bob_client, token, api):
    row = AccessToken.objects.get()
    for token_id in (row.pk, "²", ""):
        assert bob_client.post("/settings/tokens/revoke/", {"token": token_id}).status_code == 404
    assert api.get("/api/tasks/").status_code == 200


def test_tokens_need_login_and_a_post(alice_client):
    assert Client().post("/settings/tokens/", {"name": "x"}).status_code == 302
    assert alice_client.get("/settings/tokens/").status_code == 405
    assert not AccessToken.objects.exists()


# Who may call


def test_no_token_is_a_json_401_even_with_a_session(alice_client):
    for response in (Client().get("/api/tasks/"), alice_client.get("/api/tasks/")):
        assert "token" in error_of(response, 401)
        assert response["WWW-Authenticate"] == 'Bearer realm="mjdash"'


def test_a_wrong_token_is_a_401(token):
    for header in (f"Bearer {token}x", "Bearer mjd_nope", f"Basic {token}", token):
        response = Client(headers={"Authorization": header}).get("/api/tasks/")
        error_of(response, 401)


def test_an_htmx_or_browser_request_still_gets_json_not_the_login_page():
    response = Client().post("/api/tasks/", headers={"HX-Request": "true", "Accept": "text/html"})
    error_of(response, 401)


def test_the_rate_limit_answers_429_with_retry_after(api, settings):
    settings.MJDASH_API_RATE_PER_MINUTE = 2
    assert api.get("/api/tasks/").status_code == 200
    assert api.get("/api/tasks/").status_code == 200
    response = api.get("/api/tasks/")
    assert "Too many requests" in error_of(response, 429)
    assert 1 <= int(response["Retry-After"]) <= 60


def test_the_rate_is_per_token(alice_client, api, settings):
    settings.MJDASH_API_RATE_PER_MINUTE = 1
    api.get("/api/tasks/")
    error_of(api.get("/api/tasks/"), 429)
    other = Client(headers={"Authorization": f"Bearer {make_token(alice_client, 'other')}"})
    assert other.get("/api/tasks/").status_code == 200


def test_a_user_has_at_most_ten_working_tokens(alice_client, token):
    for n in range(9):
        make_token(alice_client, f"script {n}")
    page = alice_client.post("/settings/tokens/", {"name": "one too many"}, follow=True)
    assert "revoke one first" in page.content.decode()
    assert AccessToken.objects.filter(revoked_at=None).count() == 10


# Reading tasks


def test_the_list_is_the_exports_dicts_with_filters(api, mixed):
    body = api.get("/api/tasks/?status=done&tag=wild").json()
    assert (body["count"], body["page"], body["pages"]) == (1, 1, 1)
    assert body["next"] is None and body["previous"] is None
    fox = body["results"][0]
    assert (fox["id"], fox["prompt"], fox["tags"]) == (mixed["fox"], "A red FOX", ["wild"])
    assert "raw" not in fox
    assert api.get("/api/tasks/").json()["count"] == 3


def test_a_bad_filter_value_is_ignored_not_an_error(api, mixed):
    response = api.get("/api/tasks/?since=someday&status=sleeping&sort=zebra&per_page=lots")
    assert response.status_code == 200 and response.json()["count"] == 3


@pytest.mark.parametrize(
    "query",
    ["per_page=" + "9" * 5000, "page=" + "9" * 5000, "until=9999-12-31", "since=0001-01-01"],
)
def test_a_value_at_the_edge_of_the_world_is_still_an_answer(api, mixed, query):
    response = api.get(f"/api/tasks/?{query}")
    assert response.status_code in (200, 404) and response["Content-Type"] == "application/json"


def test_pages_link_to_each_other(api, mixed):
    first = api.get("/api/tasks/?per_page=2&sort=added").json()
    assert (first["count"], first["pages"], len(first["results"])) == (3, 2, 2)
    assert first["next"] == "http://testserver/api/tasks/?per_page=2&sort=added&page=2"
    second = api.get(first["next"]).json()
    assert [t["id"] for t in first["results"] + second["results"]] == [
        mixed["fox"],
        mixed["cat"],
        mixed["owl"],
    ]
    assert second["previous"].endswith("page=1") and second["next"] is None
    assert "No such page" in error_of(api.get("/api/tasks/?per_page=2&page=3"), 404)


def test_per_page_is_capped(api, mixed):
    assert api.get("/api/tasks/?per_page=5000").json()["pages"] == 1


def test_one_task(api, mixed):
    response = api.get(f"/api/tasks/{mixed['cat']}/")
    assert response["Cache-Control"] == "no-store"
    cat = response.json()
    assert (cat["id"], cat["status"], cat["prompt"]) == (mixed["cat"], "FAILURE", "a cat")


def test_a_strangers_or_unknown_task_is_a_json_404(api, bob_client, sandbox):
    bobs = track_new_task(bob_client, sandbox, prompt="bob only", token=BOB_TOKEN)
    for task_id in (bobs, "1234567890", "not%00valid"):
        response = api.get(f"/api/tasks/{task_id}/")
        assert error_of(response, 404) == "No such task."
        assert b"bob only" not in response.content


def test_a_wrong_method_is_a_json_405(api, mixed):
    response = api.delete(f"/api/tasks/{mixed['fox']}/")
    assert "GET" in error_of(response, 405) and response["Allow"] == "GET"
    assert TrackedTask.objects.filter(task_id=mixed["fox"]).exists()
    error_of(api.put("/api/tasks/"), 405)


def test_an_unknown_path_is_a_json_404(api):
    assert "openapi" in error_of(api.get("/api/nothing-here"), 404)
    error_of(api.get("/api/tasks"), 404)  # no redirect to add the slash: a POST would lose it


# Tracking tasks


def test_tracking_ids_given_as_text_in_json(api, alice, sandbox):
    task_id = sandbox.create_task(prompt="a heron")["id"]
    response = api.post("/api/tasks/", {"ids": f"look: {task_id}"}, content_type="application/json")
    assert response.status_code == 201
    assert response.json()["added"] == [task_id] and response["Cache-Control"] == "no-store"
    assert TrackedTask.objects.get(user=alice, task_id=task_id).prompt == "a heron"
    again = api.post("/api/tasks/", {"ids": [task_id]}, content_type="application/json")
    assert again.status_code == 200 and again.json()["already"] == [task_id]


def test_tracking_a_list_and_plain_text(api, sandbox):
    first, second = (sandbox.create_task(prompt=p)["id"] for p in ("one", "two"))
    listed = api.post("/api/tasks/", {"ids": [first]}, content_type="application/json")
    assert listed.json()["added"] == [first]
    plain = api.post("/api/tasks/", f"{second}\n{first}", content_type="text/plain")
    assert plain.status_code == 201
    assert (plain.json()["added"], plain.json()["already"]) == ([second], [first])


def test_junk_is_rejected_with_reasons(api):
    response = api.post("/api/tasks/", {"ids": "hello, 12"}, content_type="application/json")
    body = response.json()
    assert response.status_code == 200 and body["added"] == []
    assert body["rejected"] and all(set(r) == {"id", "reason"} for r in body["rejected"])
    assert all(r["reason"] for r in body["rejected"])


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("{not json", "not a JSON object"),
        ("[1, 2]", "not a JSON object"),
        ('{"ids": {"a": 1}}', '"ids" must be'),
        ('{"ids": [true]}', '"ids" must be'),
        ('{"ids": "  "}', "No task IDs"),
        ('{"ids": ' + "[" * 50_000 + "]" * 50_000 + "}", "not a JSON object"),
    ],
)
def test_a_bad_body_is_a_json_400(api, body, words):
    response = api.post("/api/tasks/", body, content_type="application/json")
    assert words in error_of(response, 400)


@pytest.mark.parametrize("size", [300_000, 900_000, 3_000_000])
def test_more_than_the_paste_box_takes_is_a_json_413(api, size):
    response = api.post("/api/tasks/", "1" * size, content_type="text/plain")
    assert "send fewer IDs" in error_of(response, 413)
    assert not TrackedTask.objects.exists()


def test_a_body_that_is_not_utf8_is_a_json_400(api):
    response = api.post("/api/tasks/", "\xff\xfe".encode("latin-1"), content_type="text/plain")
    assert "UTF-8" in error_of(response, 400)


# The description


def test_the_openapi_description_is_public_and_matches_the_routes(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.1")
    routed = {
        "/api/" + str(p.pattern).replace("<str:task_id>", "{task_id}")
        for p in get_resolver("tracker.api_urls").url_patterns
        if isinstance(p, URLPattern) and p.name
    }
    assert routed == set(schema["paths"])
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    error_of(client.post("/api/openapi.json"), 405)


def test_the_task_in_the_description_is_the_one_sent(api, mixed, client):
    schema = client.get("/api/openapi.json").json()["components"]["schemas"]["Task"]
    task = api.get(f"/api/tasks/{mixed['fox']}/").json()
    assert set(task) == set(schema["properties"]) == set(schema["required"])


def test_the_token_module_never_takes_a_prefix_alone(alice):
    _, token = apitokens.create(alice, "x")
    row = AccessToken.objects.get()
    request = type("R", (), {"headers": {"Authorization": f"Bearer {row.prefix}"}})()
    assert apitokens.authenticate(request) is None
    request.headers["Authorization"] = f"bearer {token}"  # the scheme is case-insensitive
    assert apitokens.authenticate(request) == row
