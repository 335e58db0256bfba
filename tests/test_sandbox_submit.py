"""The sandbox speaks the Midjourney-proxy submit protocol (imagine, action, modal) with its
answer codes, as new-api relays them and as novicezk and trueai send them, and its submit
routes can misbehave on demand."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.conftest import ALICE_TOKEN, BOB_TOKEN, NOVICEZK_TOKEN

PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n fake").decode()


def submit(sandbox, route: str, body: dict, token: str = ALICE_TOKEN, timeout=5.0) -> dict:
    header = "mj-api-secret" if token == NOVICEZK_TOKEN else "Authorization"  # its own way
    response = httpx.post(
        f"{sandbox.url}/mj/submit/{route}",
        headers={header: token},
        json=body,
        timeout=timeout,
    )
    assert response.status_code == 200
    return response.json()


def test_imagine_makes_a_task_and_answers_code_1_with_its_id(sandbox):
    answer = submit(sandbox, "imagine", {"prompt": "a red fox", "base64Array": [PNG]})
    assert (answer["code"], answer["description"]) == (1, "提交成功")
    task = sandbox.fetch(answer["result"]).json()
    assert (task["action"], task["prompt"]) == ("IMAGINE", "a red fox")


def test_imagine_refuses_a_banned_prompt_and_a_broken_image(sandbox):
    banned = submit(sandbox, "imagine", {"prompt": "a forbidden-word cat"})
    assert banned["code"] == 24 and banned["result"] is None
    assert banned["properties"]["bannedWord"] == "forbidden-word"
    broken = submit(sandbox, "imagine", {"prompt": "cat", "base64Array": ["data:image/png;x"]})
    assert broken["code"] == 4


def test_a_button_of_a_finished_grid_starts_its_child_linked_to_it(sandbox):
    grid = sandbox.create_task()
    u2 = next(b for b in grid["buttons"] if b["label"] == "U2")
    answer = submit(sandbox, "action", {"taskId": grid["id"], "customId": u2["customId"]})
    assert answer["code"] == 1
    child = sandbox.fetch(answer["result"]).json()
    assert child["action"] == "UPSCALE" and child["prompt"] == grid["prompt"]


def test_a_button_that_was_not_offered_or_a_strangers_task_is_refused(sandbox):
    grid = sandbox.create_task()
    custom_id = grid["buttons"][0]["customId"]
    assert submit(sandbox, "action", {"taskId": grid["id"], "customId": "MJ::x"})["code"] == 4
    stranger = submit(sandbox, "action", {"taskId": grid["id"], "customId": custom_id}, BOB_TOKEN)
    assert stranger["code"] == 3


def test_custom_zoom_waits_in_modal_until_its_prompt_comes_then_runs(sandbox):
    grid = sandbox.create_task(action="UPSCALE")
    custom = next(b["customId"] for b in grid["buttons"] if "CustomZoom" in b["customId"])
    waiting = submit(sandbox, "action", {"taskId": grid["id"], "customId": custom})
    assert waiting["code"] == 1  # new-api relays 21 (窗口等待) as 1
    assert sandbox.fetch(waiting["result"]).json()["status"] == "MODAL"
    done = submit(sandbox, "modal", {"taskId": waiting["result"], "prompt": "zoom 1.5"})
    assert (done["code"], done["result"]) == (1, waiting["result"])
    task = sandbox.fetch(waiting["result"]).json()
    assert task["status"] != "MODAL" and task["prompt"] == "zoom 1.5"


def test_novicezk_sends_21_and_22_as_they_are(sandbox):
    grid = sandbox.create_task(token=NOVICEZK_TOKEN, action="UPSCALE")
    custom = next(b["customId"] for b in grid["buttons"] if "CustomZoom" in b["customId"])
    body = {"taskId": grid["id"], "customId": custom}
    assert submit(sandbox, "action", body, NOVICEZK_TOKEN)["code"] == 21
    sandbox.fault("submit", "code", code=22, times=1)
    queued = submit(sandbox, "imagine", {"prompt": "cat"}, NOVICEZK_TOKEN)
    assert queued["code"] == 22 and queued["result"]
    fetched = httpx.get(
        f"{sandbox.url}/mj/task/{queued['result']}/fetch", headers={"mj-api-secret": NOVICEZK_TOKEN}
    )
    assert fetched.json()["prompt"] == "cat"  # the queued task is real


@pytest.mark.parametrize("code", [23, 24, 9])
def test_a_code_fault_answers_200_with_that_code_and_makes_no_task(sandbox, code):
    sandbox.fault("submit", "code", code=code, times=1)
    answer = submit(sandbox, "imagine", {"prompt": "cat"})
    assert answer["code"] == code and answer["result"] is None and answer["description"]


def test_an_accepted_hang_makes_the_task_then_answers_too_late(sandbox):
    sandbox.fault("submit", "accepted_hang", seconds=2, times=1)
    before = httpx.get(f"{sandbox.url}/_sandbox/health").json()["tasks"]
    with pytest.raises(httpx.ReadTimeout):
        submit(sandbox, "imagine", {"prompt": "made anyway"}, timeout=0.5)
    assert httpx.get(f"{sandbox.url}/_sandbox/health").json()["tasks"] == before + 1
