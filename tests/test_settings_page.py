"""Alice points mjdash at her own gateway; the token never comes back to a browser."""

from __future__ import annotations

import pytest
from django.utils.html import strip_tags

from tests.conftest import ALICE_TOKEN, BOB_TOKEN
from tracker.models import Profile, TrackedTask

pytestmark = pytest.mark.django_db


def test_it_requires_login(client):
    assert client.get("/settings/").status_code == 302
    assert client.post("/settings/test/").status_code == 302


def test_it_shows_the_site_default_without_any_of_its_token(alice_client):
    body = alice_client.get("/settings/").content.decode()
    assert "site default" in body and "the site&#x27;s token" in body
    assert ALICE_TOKEN not in body and ALICE_TOKEN[3:20] not in body


def test_it_shows_the_users_own_token_masked(alice_client, alice, sandbox):
    form = {"base_url": sandbox.url, "token": BOB_TOKEN, "auth_style": "bearer"}
    alice_client.post("/settings/", form)
    body = alice_client.get("/settings/").content.decode()
    assert "…" + BOB_TOKEN[-4:] in body and BOB_TOKEN not in body


def test_saving_a_gateway_sends_new_tasks_there(alice_client, alice, sandbox):
    response = alice_client.post(
        "/settings/",
        {"base_url": sandbox.url + "/mj/", "token": BOB_TOKEN, "auth_style": "mj-api-secret"},
        follow=True,
    )
    assert b"Saved." in response.content
    assert BOB_TOKEN.encode() not in response.content
    connection = Profile.objects.get(user=alice).gateway
    assert (connection.base_url, connection.auth_style) == (sandbox.url, "mj-api-secret")
    task = sandbox.create_task(token=BOB_TOKEN)
    alice_client.post("/", {"ids": task["id"]})
    assert TrackedTask.objects.get(user=alice).status == "SUCCESS"


def test_an_empty_token_never_carries_the_sites_token_over(alice_client, alice, sandbox):
    alice_client.post("/settings/", {"base_url": sandbox.url, "token": "", "auth_style": "raw"})
    assert Profile.objects.get(user=alice).gateway.token == ""


def test_a_bad_url_is_explained_and_nothing_changes(alice_client, alice):
    response = alice_client.post(
        "/settings/", {"base_url": "ftp://x", "token": "", "auth_style": "bearer"}
    )
    assert b"Enter a valid URL." in response.content
    assert not Profile.objects.filter(user=alice).exists()


def test_going_back_to_the_site_default(alice_client, alice, sandbox):
    alice_client.post(
        "/settings/", {"base_url": sandbox.url, "token": BOB_TOKEN, "auth_style": "raw"}
    )
    alice_client.post("/settings/", {"use_default": "1"})
    assert Profile.objects.get(user=alice).gateway is None


@pytest.mark.parametrize(
    "base_url, token, expected",
    [
        ("{sandbox}", ALICE_TOKEN, "Connected: the gateway accepted the token."),
        ("{sandbox}", "sk-wrong", "The gateway rejected the API token (无效的令牌)."),
        ("{sandbox}/not/the/api", BOB_TOKEN, "web page, not the Midjourney API"),
        ("http://127.0.0.1:9", BOB_TOKEN, "Could not connect to the gateway."),
    ],
)
def test_test_connection_says_what_it_found(alice_client, sandbox, base_url, token, expected):
    alice_client.post(
        "/settings/",
        {"base_url": base_url.format(sandbox=sandbox.url), "token": token, "auth_style": "bearer"},
    )
    response = alice_client.post("/settings/test/", headers={"HX-Request": "true"})
    assert expected in strip_tags(response.content.decode())  # the gateway's words marked
    assert token not in response.content.decode()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8765",
        "http://169.254.169.254/latest",
        "http://10.1.2.3",
        "https://no-such-host.invalid",
    ],
)
def test_a_gateway_on_the_servers_own_network_is_refused_alike(alice_client, alice, settings, url):
    """One message for an unresolvable name and a private address: the form is no way to
    learn the server's own network."""
    settings.MJDASH_ALLOW_PRIVATE_GATEWAYS = False
    response = alice_client.post(
        "/settings/", {"base_url": url, "token": "", "auth_style": "bearer"}
    )
    page = response.content.decode()
    assert "is not a public address that this site can reach" in page
    assert not any(part in page for part in ("(127.0.0.1)", "(169.254", "(10.1.2.3)"))
    assert not Profile.objects.filter(user=alice).exists()
