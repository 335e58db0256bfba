"""The circuit breaker: after transient failures in a row, no calls during a cool-off, then
one probe; pages keep the last known state and say why."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import track_new_task
from tracker.models import Gateway

pytestmark = pytest.mark.django_db
POLL = {"HX-Request": "true"}


def test_the_breaker_stops_calls_during_the_cool_off_then_probes_once(
    alice_client, alice, sandbox, settings
):
    settings.MJDASH_BREAKER_FAILURES = 2
    settings.MJDASH_BREAKER_COOLOFF_SECONDS = 60
    settings.MJDASH_GATEWAY_RETRIES = 0
    track_new_task(alice_client, sandbox, step_seconds=60)
    sandbox.fault("list_by_condition", "status", status=503)
    sandbox.reset_stats()
    for _ in range(6):
        response = alice_client.get("/tasks/list/", headers=POLL)
    assert sandbox.stats()["list_by_condition"] == 2  # then the circuit opened
    body = response.content.decode()
    assert "The gateway has been unreachable since" in body
    assert "mjdash will try again at" in body

    sandbox.clear_faults()
    moment_ago = timezone.now() - timedelta(seconds=1)  # the cool-off has passed, and with it
    Gateway.objects.update(circuit_open_until=moment_ago, refresh_due_at=moment_ago)  # the wait
    sandbox.reset_stats()
    for _ in range(3):
        response = alice_client.get("/tasks/list/", headers=POLL)
    assert sandbox.stats()["list_by_condition"] == 3
    assert "unreachable" not in response.content.decode()
    connection = Gateway.objects.get()
    assert (connection.consecutive_failures, connection.unreachable_since) == (0, None)


def test_the_open_breaker_spares_seeds_and_images_too(alice_client, alice, sandbox):
    task_id = track_new_task(alice_client, sandbox)
    Gateway.objects.update(
        circuit_open_until=timezone.now() + timedelta(minutes=1),
        unreachable_since=timezone.now(),
    )
    sandbox.reset_stats()
    seed = alice_client.get(f"/tasks/{task_id}/seed/", headers=POLL).content.decode()
    assert "unreachable since" in seed
    image = alice_client.get(f"/mj/image/{task_id}")
    assert image.status_code == 502, image.content[:500]
    assert sandbox.stats() == {}, "a call went out while the circuit was open"
