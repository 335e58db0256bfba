"""Security section 1: the site's gateway token goes to the site's own gateway and nowhere
else, and no user ever sees any part of it.

The attack: a user on the site default enters their own gateway URL, leaves the token empty,
saves, and presses Test connection. The old form kept the current token (the site's), so the
attacker's server received `Authorization: Bearer <site token>`.
"""

from __future__ import annotations

import pytest

from tests.conftest import ALICE_TOKEN, BOB_TOKEN, use_gateway
from tracker.models import Gateway, Profile, TrackedTask

pytestmark = pytest.mark.django_db
SITE_TOKEN = ALICE_TOKEN  # the test settings make alice's sandbox token the site's token
SOME_ID = "1732000000000123"


def attack(client, url: str) -> None:
    """Everything the attacker does after pointing Settings at their own server."""
    client.post("/settings/test/")
    client.post("/", {"ids": SOME_ID})
    client.get("/tasks/list/")
    client.post(f"/tasks/{SOME_ID}/recheck/")
    client.get(f"/tasks/{SOME_ID}/seed/")
    client.get(f"/mj/image/{SOME_ID}")


def test_the_reported_attack_sends_the_site_token_nowhere(alice_client, alice, stub):
    response = alice_client.post(
        "/settings/", {"base_url": stub.url, "token": "", "auth_style": "bearer"}, follow=True
    )
    assert b"Saved." in response.content
    assert Profile.objects.get(user=alice).gateway.token == ""  # the form kept nothing
    attack(alice_client, stub.url)
    assert stub.requests, "the attacker's gateway was asked (with no token), as the user chose"
    assert not stub.sent(SITE_TOKEN)
    assert all("authorization" not in {k.lower() for k in r["headers"]} for r in stub.requests)


def test_a_changed_url_with_an_empty_token_means_no_token(alice_client, alice, sandbox, stub):
    alice_client.post(
        "/settings/", {"base_url": sandbox.url, "token": BOB_TOKEN, "auth_style": "bearer"}
    )
    alice_client.post("/settings/", {"base_url": stub.url, "token": "", "auth_style": "bearer"})
    assert Profile.objects.get(user=alice).gateway.token == ""
    attack(alice_client, stub.url)
    assert not stub.sent(BOB_TOKEN) and not stub.sent(SITE_TOKEN)


def test_an_empty_token_keeps_the_users_own_token_for_the_same_url(alice_client, alice, sandbox):
    form = {"base_url": sandbox.url, "token": BOB_TOKEN, "auth_style": "bearer"}
    alice_client.post("/settings/", form)
    alice_client.post("/settings/", {**form, "token": "", "auth_style": "raw"})
    connection = Profile.objects.get(user=alice).gateway
    assert (connection.token, connection.auth_style) == (BOB_TOKEN, "raw")


def test_a_row_that_pairs_the_site_token_with_another_url_never_sends_it(alice_client, alice, stub):
    """Whatever the admin or the database says: enforced where the client is built."""
    use_gateway(alice, stub.url, SITE_TOKEN)
    attack(alice_client, stub.url)
    assert stub.requests == []
    row = TrackedTask.objects.get(user=alice)
    assert "only to the site's own gateway" in row.last_error
    page = alice_client.post("/settings/test/", headers={"HX-Request": "true"}).content.decode()
    assert "only to the site&#x27;s own gateway" in page


def test_moving_the_site_rows_url_later_sends_the_token_nowhere(alice_client, alice, stub):
    alice_client.post("/", {"ids": SOME_ID})  # alice is on the site default
    Gateway.objects.filter(shared=True).update(base_url=stub.url)
    attack(alice_client, stub.url)
    assert stub.requests == []


def test_the_same_host_on_another_port_is_another_gateway(alice_client, alice, sandbox, stub):
    assert stub.url.split(":")[1] == sandbox.url.split(":")[1]  # both on 127.0.0.1
    use_gateway(alice, stub.url, SITE_TOKEN)
    attack(alice_client, stub.url)
    assert stub.requests == []


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("https://gw.example/api/", "https://gw.example:443/api", True),
        ("http://gw.example", "http://GW.example:80/", True),
        ("https://gw.example", "https://gw.example:8443", False),
        ("https://gw.example", "http://gw.example", False),
        ("https://gw.example/api", "https://gw.example/other", False),
        ("https://gw.example", "https://user@gw.example", False),
        ("https://gw.example", "https://gw.example.evil.test", False),
    ],
)
def test_the_site_url_is_matched_exactly_but_for_spelling(a, b, same):
    from tracker.upstream import same_url

    assert same_url(a, b) is same


def test_no_page_shows_any_part_of_the_site_token(alice_client, admin_client, settings, stub):
    settings.MJDASH_GATEWAY_URL = stub.url
    settings.MJDASH_GATEWAY_TOKEN = "sk-site-TOPSECRET-Zq9X"
    alice_client.post("/", {"ids": SOME_ID})
    row = Gateway.objects.get(shared=True)
    pages = [
        (alice_client, "/settings/"),
        (alice_client, "/"),
        (alice_client, f"/tasks/{SOME_ID}/"),
        (admin_client, "/admin/tracker/gateway/"),
        (admin_client, f"/admin/tracker/gateway/{row.pk}/change/"),
    ]
    for client, path in pages:
        body = client.get(path).content.decode()
        assert "Zq9X" not in body and "TOPSECRET" not in body, path
    assert "the site&#x27;s token" in alice_client.get("/settings/").content.decode()
    assert stub.sent("Zq9X")  # it is still used with the site's own gateway


def test_credentials_in_a_url_are_refused(alice_client, alice):
    response = alice_client.post(
        "/settings/", {"base_url": "https://user:pw@gw.example.com", "token": ""}
    )
    assert "Leave the user name and password out of the URL" in response.content.decode()
    assert not Profile.objects.filter(user=alice, gateway__isnull=False).exists()


@pytest.mark.django_db(transaction=True)
def test_the_migration_cleans_rows_written_before_the_fix(settings, sandbox):
    """Rows that paired the site token with another URL, or hid credentials in a URL, are
    cleaned; a stranger's copy of a shared-gateway task loses what it should not hold."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate([("tracker", "0004_shared_gateway_ownership")])
    apps = executor.loader.project_state([("tracker", "0004_shared_gateway_ownership")]).apps
    Connection = apps.get_model("tracker", "UpstreamConnection")
    User = apps.get_model("auth", "User")
    Task = apps.get_model("tracker", "TrackedTask")

    def row(url, token):
        fingerprint = Gateway.make_fingerprint(url, token, "bearer")
        return Connection.objects.create(base_url=url, token=token, fingerprint=fingerprint)

    site = row(sandbox.url, SITE_TOKEN)
    stolen = row("http://127.0.0.1:9", SITE_TOKEN)
    with_credentials = row("https://user:pw@gw.example.com", "sk-own")
    first, second = User.objects.create(username="first"), User.objects.create(username="second")
    raw = {"id": SOME_ID, "prompt": "a private prompt"}
    Task.objects.create(
        user=first, connection=site, task_id=SOME_ID, prompt="a private prompt", raw=raw
    )
    Task.objects.create(
        user=second, connection=site, task_id=SOME_ID, prompt="a private prompt", raw=raw
    )

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert Gateway.objects.get(pk=stolen.pk).token == ""
    assert Gateway.objects.get(pk=with_credentials.pk).base_url == "https://gw.example.com"
    assert Gateway.objects.get(pk=site.pk).shared
    mine, theirs = (TrackedTask.objects.get(user__username=n) for n in ("first", "second"))
    assert mine.prompt == "a private prompt"
    assert (theirs.prompt, theirs.raw, theirs.missing_at_gateway) == ("", {}, True)
