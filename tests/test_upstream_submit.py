"""Submitting through the upstream client: sent once and never retried, every answer code of
the Midjourney-proxy protocol read at the boundary, and a timeout after the gateway may have
accepted told apart from a request that never left."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from tests.conftest import ALICE_TOKEN, NOVICEZK_TOKEN
from tracker.upstream import Client, UpstreamError
from tracker.upstream.submit import MaybeSubmitted, SubmitRefused


def sandbox_client(sandbox, token: str = ALICE_TOKEN, style: str = "bearer") -> Client:
    return Client(sandbox.url, token, style, allow_private=True)


def counting_client(status: int, body: object, calls: list) -> Client:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.Response(status, content=content, headers={"content-type": "application/json"})

    return Client("https://gw.example", "sk-test", transport=httpx.MockTransport(handler))


def test_imagine_is_submitted_and_its_task_id_comes_back(sandbox):
    submitted = sandbox_client(sandbox).submit("imagine", {"prompt": "a lighthouse"})
    assert submitted.code == 1 and submitted.task_id
    assert sandbox.fetch(submitted.task_id).json()["prompt"] == "a lighthouse"


def test_a_speed_mode_goes_through_new_apis_path_prefix(sandbox):
    submitted = sandbox_client(sandbox).submit("imagine", {"prompt": "relaxed"}, mode="relax")
    assert sandbox.fetch(submitted.task_id).json()["prompt"] == "relaxed"
    with pytest.raises(UpstreamError):
        sandbox_client(sandbox).submit("imagine", {"prompt": "x"}, mode="../admin")


def test_a_button_and_the_modal_it_waits_for(sandbox):
    upscale = sandbox.create_task(token=NOVICEZK_TOKEN, action="UPSCALE")
    custom = next(b["customId"] for b in upscale["buttons"] if "CustomZoom" in b["customId"])
    client = sandbox_client(sandbox, NOVICEZK_TOKEN, "mj-api-secret")
    waiting = client.submit("action", {"taskId": upscale["id"], "customId": custom})
    assert (waiting.code, waiting.description) == (21, "窗口等待")  # novicezk sends 21 as is
    done = client.submit("modal", {"taskId": waiting.task_id, "prompt": "--zoom 1.5"})
    assert done.task_id == waiting.task_id


@pytest.mark.parametrize(
    "code, words",
    [(23, "queue is full"), (24, "banned word"), (9, "code 9"), (4, "code 4")],
)
def test_a_200_with_an_error_code_is_a_clear_refusal(sandbox, code, words):
    sandbox.fault("submit", "code", code=code, times=1)
    with pytest.raises(SubmitRefused) as refused:
        sandbox_client(sandbox).submit("imagine", {"prompt": "cat"})
    assert words in refused.value.message and refused.value.code == code
    assert refused.value.permanent


def test_a_banned_prompt_names_the_word(sandbox):
    with pytest.raises(SubmitRefused) as refused:
        sandbox_client(sandbox).submit("imagine", {"prompt": "a forbidden-word here"})
    assert "forbidden-word" in refused.value.message


def test_queued_is_accepted_with_its_task_id(sandbox):
    sandbox.fault("submit", "code", code=22, times=1)
    client = sandbox_client(sandbox, NOVICEZK_TOKEN, "mj-api-secret")
    submitted = client.submit("imagine", {"prompt": "in line"})
    assert submitted.code == 22 and submitted.task_id


def test_a_timeout_after_the_gateway_accepted_is_maybe_submitted_and_not_sent_twice(
    sandbox, settings
):
    settings.MJDASH_SUBMIT_TIMEOUT = 1
    sandbox.fault("submit", "accepted_hang", seconds=3, times=1)
    sandbox.reset_stats()
    with pytest.raises(MaybeSubmitted) as maybe:
        sandbox_client(sandbox).submit("imagine", {"prompt": "late"})
    assert "may have accepted" in maybe.value.message
    assert sandbox.stats()["submit"] == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_server_error_is_never_retried_and_may_have_been_taken(status):
    calls = []
    with pytest.raises(MaybeSubmitted):
        counting_client(status, {"error": "boom"}, calls).submit("imagine", {"prompt": "x"})
    assert len(calls) == 1


def test_an_unreadable_200_may_have_been_taken():
    with pytest.raises(MaybeSubmitted):
        counting_client(200, b"<html>", []).submit("imagine", {"prompt": "x"})


def test_new_apis_relay_failure_code_5_may_have_been_taken():
    body = {"code": 5, "description": "do_request_failed", "type": "upstream_error"}
    with pytest.raises(MaybeSubmitted):
        counting_client(400, body, []).submit("imagine", {"prompt": "x"})


def test_a_400_refusal_in_the_mj_envelope_is_a_refusal():
    body = {"code": 4, "description": "参数错误", "result": None}
    with pytest.raises(SubmitRefused) as refused:
        counting_client(400, body, []).submit("imagine", {"prompt": ""})
    assert "参数错误" in refused.value.message


def test_an_accepted_answer_without_a_task_id_is_refused():
    with pytest.raises(SubmitRefused):
        counting_client(200, {"code": 1, "result": "../x"}, []).submit("imagine", {"prompt": "x"})


def test_a_gateway_that_cannot_be_reached_surely_got_nothing():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    client = Client(f"http://127.0.0.1:{port}", "sk-test", allow_private=True)
    with pytest.raises(UpstreamError) as failed:
        client.submit("imagine", {"prompt": "x"})
    assert not isinstance(failed.value, MaybeSubmitted)
