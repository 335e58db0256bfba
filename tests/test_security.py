"""CSP and CSRF hold on every page; secrets stay on the server."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.conftest import ALICE_TOKEN, track_new_task

pytestmark = pytest.mark.django_db
PAGES = ["/", "/gallery/", "/settings/", "/accounts/login/"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_sends_a_strict_csp_and_has_no_inline_script(alice_client, path):
    response = alice_client.get(path)
    csp = response["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in csp
    assert "style-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    for tag in re.findall(r"<script[^>]*>", response.content.decode()):
        assert f'nonce="{nonce}"' in tag, tag
    assert " style=" not in response.content.decode()
    assert " onclick=" not in response.content.decode()


def test_posts_without_a_csrf_token_are_refused(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post("/", {"ids": "1712158011464906"}).status_code == 403
    assert client.post("/settings/test/").status_code == 403


def test_htmx_requests_carry_the_csrf_token_from_the_body(alice_client):
    body = alice_client.get("/").content.decode()
    assert re.search(r'<body hx-headers=\'\{"X-CSRFToken": "[^"]+"\}\'>', body)


def test_the_upstream_token_never_reaches_a_page(alice_client, sandbox):
    task = sandbox.create_task()
    alice_client.post("/", {"ids": task["id"]})
    for path in [*PAGES, f"/tasks/{task['id']}/", "/admin/"]:
        assert ALICE_TOKEN.encode() not in alice_client.get(path).content


def test_the_admin_shows_only_a_masked_token(admin_client, bob, sandbox):
    from tests.conftest import BOB_TOKEN
    from tracker.models import Gateway

    connection = Gateway.objects.get(shared=False)  # bob's own
    page = admin_client.get(f"/admin/tracker/gateway/{connection.pk}/change/")
    assert page.status_code == 200
    assert BOB_TOKEN.encode() not in page.content
    assert ("…" + BOB_TOKEN[-4:]).encode() in page.content


def test_credentials_in_a_gateway_url_are_never_shown(alice_client, alice, sandbox):
    from tests.conftest import use_gateway

    port = sandbox.url.rsplit(":", 1)[1]
    use_gateway(alice, f"http://gwuser:hunter2secret@127.0.0.1:{port}", ALICE_TOKEN)
    body = alice_client.get("/settings/").content.decode()
    assert f"http://127.0.0.1:{port}" in body
    assert "hunter2secret" not in body


def test_tokens_are_encrypted_at_rest(alice_client, sandbox):
    from django.db import connection as db

    from tracker.models import Gateway

    track_new_task(alice_client, sandbox)  # stores the site default connection
    with db.cursor() as cursor:
        cursor.execute("SELECT token FROM tracker_gateway")
        stored = [row[0] for row in cursor.fetchall()]
    assert stored and all(value.startswith("fernet:") for value in stored)
    assert not any(ALICE_TOKEN in value for value in stored)
    assert Gateway.objects.get().token == ALICE_TOKEN


def test_a_rotated_secret_key_still_opens_tokens_and_a_lost_one_fails_safely(
    alice, settings, sandbox
):
    from tracker.models import Gateway

    connection = Gateway.for_values(sandbox.url, ALICE_TOKEN, "bearer")
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-brand-new-secret-key", [old_key]
    assert Gateway.objects.get(pk=connection.pk).token == ALICE_TOKEN
    settings.SECRET_KEY_FALLBACKS = []
    lost = Gateway.objects.get(pk=connection.pk)
    assert (lost.token, lost.masked_token) == ("", "no token")  # asks for the token again
