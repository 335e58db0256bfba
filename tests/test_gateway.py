"""The gateway service: the one door every caller uses, and the clients it keeps."""

from __future__ import annotations

import threading

import pytest

from tests.conftest import BOB_TOKEN, use_gateway
from tracker import gateway
from tracker.models import Gateway, TrackedTask

pytestmark = pytest.mark.django_db


def test_a_stream_in_flight_survives_many_new_gateways_and_tokens(alice, bob, sandbox):
    """A site where each user has a token fills the client cache quickly; making the 65th
    client must not close one another request is streaming through."""
    task = sandbox.create_task(token=BOB_TOKEN)["id"]
    bob_row = TrackedTask.objects.create(
        user=bob, gateway=Gateway.objects.get(shared=False), task_id=task
    )
    chunks = gateway.open_image(bob_row).chunks()
    first = next(chunks)
    in_hand = gateway._client(bob_row.gateway)  # as another request holds it
    errors: list[Exception] = []
    others = [Gateway.for_values(sandbox.url, f"sk-{n:04d}", "bearer") for n in range(120)]

    def mint(start: int) -> None:
        try:
            for row in others[start : start + 40]:
                gateway._client(row)
        except Exception as exc:  # noqa: BLE001 - the test reports whatever went wrong
            errors.append(exc)

    threads = [threading.Thread(target=mint, args=(n * 40,)) for n in range(3)]
    for thread in threads:
        thread.start()
    rest = b"".join(chunks)
    for thread in threads:
        thread.join()
    assert errors == []
    assert in_hand.fetch(task).status == "SUCCESS"  # not "the client has been closed"
    assert first.startswith(b"\x89PNG") and len(first) + len(rest) > 1_000_000
    assert len(gateway._clients) <= gateway.MAX_CLIENTS


def test_test_connection_says_what_it_found_in_plain_words(alice, sandbox):
    assert gateway.test_connection(alice) == (True, "Connected: the gateway accepted the token.")
    use_gateway(alice, sandbox.url, "sk-wrong")
    ok, message = gateway.test_connection(alice)
    assert not ok and "rejected the API token" in message


def test_choosing_a_gateway_carries_a_token_only_to_its_own_url(alice, sandbox, stub):
    gateway.choose(alice, sandbox.url, BOB_TOKEN, "bearer")
    assert gateway.choose(alice, sandbox.url, "", "raw").token == BOB_TOKEN
    assert gateway.choose(alice, stub.url, "", "bearer").token == ""


def test_track_looks_new_ids_up_at_once(alice, sandbox):
    task = sandbox.create_task(prompt="at once")["id"]
    result = gateway.track(alice, f"https://gw.example/mj/task/{task}/fetch")
    assert result.added == [task] and result.gateway_ok
    assert TrackedTask.objects.get(user=alice).prompt == "at once"
