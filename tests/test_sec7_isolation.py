"""Security section 7: isolation, proven for every route. The test walks Django's URL
resolver itself, so a route added later is covered (or fails here until it is)."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.conftest import run_worker
from tracker import apitokens, notify
from tracker.models import Channel, TaskOwner, TrackedTask

pytestmark = pytest.mark.django_db(transaction=True)
METHODS = ["get", "post", "put", "patch", "delete", "head", "options"]
VARIANTS = ["", "?thumb=1", "?download=1", "?poll=1", "?page=2"]
# Routes that take an argument but hold no user's object; anything else with an argument
# must be a task route, or this list must say why not.
NOT_OWNED = {"admin", "password_reset_confirm"}


def routes(resolver=None, prefix=""):
    """(url template, name, argument names) for every pattern in the project."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin":
                continue  # staff only, and covered by Django's own permission checks
            yield from routes(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.name, set(entry.pattern.converters)


def owned_routes() -> list[tuple[str, str]]:
    found = []
    for template, name, arguments in routes():
        if not arguments or name in NOT_OWNED:
            continue
        owned = arguments <= {"task_id", "part"} or arguments <= {"channel_id", "token"}
        assert owned, f"{name} takes {arguments}: teach this test"
        found.append((template, name))
    return found


def test_the_walk_finds_every_task_route():
    names = {name for _, name in owned_routes()}
    assert {
        "task_detail", "task_seed", "task_recheck", "task_untrack", "task_archive", "task_thumb",
        "task_organise", "image", "thumb", "image_part", "thumb_part", "api_task", "lightbox",
        "task_action", "task_modal", "channel_test", "channel_remove", "channel_confirm",
    } <= names  # fmt: skip


def test_a_stranger_gets_404_everywhere_and_nothing_moves(
    alice_client, bob_client, carol_client, alice, bob, carol, sandbox, settings
):
    task = sandbox.create_task(prompt="alice only")["id"]
    alice_client.post("/", {"ids": task})
    run_worker()  # her images are archived: the quadrant routes have files behind them
    assert TrackedTask.objects.get(task_id=task).archived_at is not None
    channel = notify.add_channel(alice, Channel.Kind.EMAIL, "alice@example.org")  # hers alone
    before = list(TrackedTask.objects.values())
    owners = list(TaskOwner.objects.values())
    channels = list(Channel.objects.values())
    # The strangers are logged in, and carry an API token of their own for the API's routes.
    settings.MJDASH_API_RATE_PER_MINUTE = 10_000
    tokens = {
        bob_client: apitokens.create(bob, "bob")[1],
        carol_client: apitokens.create(carol, "c")[1],
    }
    sandbox.reset_stats()
    tried = 0
    for template, name in owned_routes():
        path = "/" + template.replace("<str:task_id>", task).replace("<int:part>", "1")
        path = path.replace("<int:channel_id>", str(channel.pk))
        path = path.replace("<str:token>", notify.confirmation_token(channel))
        for stranger in (bob_client, carol_client):
            for method in METHODS:
                for variant in VARIANTS:
                    for htmx in ({}, {"HX-Request": "true"}):
                        headers = {**htmx, "Authorization": f"Bearer {tokens[stranger]}"}
                        response = getattr(stranger, method)(path + variant, headers=headers)
                        assert response.status_code == 404, (name, method, variant, htmx)
                        assert b"alice only" not in response.content
                        if template.startswith("api/") and method != "head":
                            assert response.json()["error"]["status"] == 404
                        tried += 1
    assert tried >= 5 * 2 * 7 * 5 * 2
    assert list(TrackedTask.objects.values()) == before
    assert list(TaskOwner.objects.values()) == owners
    assert list(Channel.objects.values()) == channels
    assert sum(sandbox.stats().values()) == 0
