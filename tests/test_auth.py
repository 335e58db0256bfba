"""Logging in and out, and sign-up only where the site allows it."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_a_person_logs_in_and_lands_on_the_dashboard(client, alice):
    page = client.get("/accounts/login/")
    assert b"Log in to mjdash" in page.content
    response = client.post(
        "/accounts/login/", {"username": "alice", "password": PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/"
    assert b"Your tasks" in response.content


def test_a_wrong_password_is_explained(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert b"Please enter a correct username and password" in response.content


def test_logout_is_a_post_and_ends_the_session(alice_client):
    response = alice_client.post("/accounts/logout/", follow=True)
    assert b"Log in to mjdash" in response.content
    assert alice_client.get("/").status_code == 302


def test_sign_up_is_closed_by_default(client):
    assert client.get("/accounts/signup/").status_code == 404
    assert b"Create an account" not in client.get("/accounts/login/").content


def test_sign_up_works_when_allowed(client, settings):
    settings.MJDASH_ALLOW_SIGNUP = True
    response = client.post(
        "/accounts/signup/",
        {
            "username": "dora",
            "password1": "a-long-unusual-pass",
            "password2": "a-long-unusual-pass",
        },
        follow=True,
    )
    assert b"Welcome!" in response.content


def test_logging_out_clears_the_browsers_cache_of_the_site(alice_client):
    response = alice_client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response["Clear-Site-Data"] == '"cache"'
