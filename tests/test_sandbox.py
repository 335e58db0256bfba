"""The sandbox answers like new-api does on the wire (docs/gateway-quirks.md).

mjdash's other tests are only as honest as this stand-in, so its quirks are pinned here.
"""

from __future__ import annotations

import io
import json

import httpx
import pytest
from PIL import Image

from tests.conftest import ALICE_TOKEN, BOB_TOKEN, wait_until

NA_KEYS = [
    "id", "action", "customId", "botType", "prompt", "promptEn", "description", "state",
    "submitTime", "startTime", "finishTime", "imageUrl", "videoUrl", "videoUrls", "status",
    "progress", "failReason", "buttons", "maskBase64", "properties",
]  # fmt: skip


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {ALICE_TOKEN}"},
        {"Authorization": ALICE_TOKEN},
        {"Authorization": ALICE_TOKEN.removeprefix("sk-")},
        {"mj-api-secret": ALICE_TOKEN},
        {"Authorization": "midjourney-proxy", "mj-api-secret": f"Bearer {ALICE_TOKEN}"},
    ],
)
def test_it_accepts_every_way_new_api_reads_a_token(sandbox, headers):
    task = sandbox.create_task()
    response = httpx.get(f"{sandbox.url}/mj/task/{task['id']}/fetch", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"


def test_a_bad_or_missing_token_gets_new_apis_auth_envelope(sandbox):
    bad = httpx.get(f"{sandbox.url}/mj/task/1/fetch", headers={"Authorization": "Bearer sk-nope"})
    assert bad.status_code == 401
    assert bad.text.startswith('{"error":{"code":"","message":"无效的令牌 (request id: ')
    assert bad.text.endswith('","type":"new_api_error"}}')
    missing = httpx.get(f"{sandbox.url}/mj/task/1/fetch")
    assert missing.status_code == 401
    assert "未提供令牌" in missing.json()["error"]["message"]
    pinned = httpx.get(
        f"{sandbox.url}/mj/task/1/fetch", headers={"Authorization": f"{ALICE_TOKEN}-7"}
    )
    assert pinned.status_code == 403


def test_an_unknown_or_foreign_task_is_task_no_found_with_its_trailing_space(sandbox):
    task = sandbox.create_task(token=BOB_TOKEN)
    for task_id in ("1700000000000000", task["id"]):
        response = sandbox.fetch(task_id, token=ALICE_TOKEN)
        assert response.status_code == 400
        assert (
            response.content == b'{"code":4,"description":"task_no_found ","type":"upstream_error"}'
        )


def test_a_task_has_every_new_api_key_in_struct_order_with_go_zero_values(sandbox):
    task = sandbox.create_task(step_seconds=60)
    body = sandbox.fetch(task["id"]).json()
    assert list(body) == NA_KEYS
    assert body["status"] == ""
    assert body["progress"] == "0%"
    assert body["startTime"] == 0 and body["finishTime"] == 0
    assert body["imageUrl"] == "" and body["buttons"] is None and body["properties"] is None


def test_a_task_moves_through_every_state_to_success(sandbox):
    task = sandbox.create_task(step_seconds=0.3, prompt="a red fox")
    seen = []

    def finished():
        body = sandbox.fetch(task["id"]).json()
        if not seen or seen[-1] != (body["status"], body["progress"]):
            seen.append((body["status"], body["progress"]))
        return body if body["status"] == "SUCCESS" else None

    final = wait_until(finished, timeout=10, every=0.05)
    statuses = [status for status, _ in seen]
    assert statuses[0] == ""
    assert "SUBMITTED" in statuses and "IN_PROGRESS" in statuses
    assert len({p for s, p in seen if s == "IN_PROGRESS"}) >= 3
    assert final["progress"] == "100%"
    assert final["imageUrl"].endswith(f"/mj/image/{task['id']}")
    assert [b["label"] for b in final["buttons"]][:4] == ["U1", "U2", "U3", "U4"]


def test_a_running_task_carries_a_rand_preview(sandbox):
    task = sandbox.create_task(step_seconds=5, age_seconds=11)
    body = sandbox.fetch(task["id"]).json()
    assert body["status"] == "IN_PROGRESS"
    assert "?rand=" in body["imageUrl"]


def test_a_failure_has_a_reason_and_forced_100_percent(sandbox):
    task = sandbox.create_task(outcome="FAILURE", fail_reason="任务超时")
    body = sandbox.fetch(task["id"]).json()
    assert (body["status"], body["progress"], body["failReason"]) == ("FAILURE", "100%", "任务超时")


def test_list_by_condition_drops_unknown_and_foreign_ids(sandbox):
    mine = sandbox.create_task()
    theirs = sandbox.create_task(token=BOB_TOKEN)
    response = httpx.post(
        f"{sandbox.url}/mj/task/list-by-condition",
        headers={"Authorization": f"Bearer {ALICE_TOKEN}"},
        json={"ids": [theirs["id"], "1700000000000000", mine["id"]]},
    )
    assert [t["id"] for t in response.json()] == [mine["id"]]


@pytest.mark.parametrize("body", [b"{}", b'{"ids":null}', b'{"ids":[]}'])
def test_list_by_condition_with_no_ids_is_an_empty_array(sandbox, body):
    response = httpx.post(
        f"{sandbox.url}/mj/task/list-by-condition",
        headers={"Authorization": f"Bearer {ALICE_TOKEN}"},
        content=body,
    )
    assert (response.status_code, response.text) == (200, "[]")


def test_list_by_condition_with_broken_json_is_do_request_failed(sandbox):
    response = httpx.post(
        f"{sandbox.url}/mj/task/list-by-condition",
        headers={"Authorization": f"Bearer {ALICE_TOKEN}"},
        content=b"{not json",
    )
    assert response.status_code == 400
    assert response.json() == {
        "code": 4,
        "description": "do_request_failed ",
        "type": "upstream_error",
    }


def test_image_seed_answers_code_1_when_done_and_http_200_code_4_before(sandbox):
    done = sandbox.create_task()
    running = sandbox.create_task(step_seconds=60)
    headers = {"Authorization": f"Bearer {ALICE_TOKEN}"}
    ok = httpx.get(f"{sandbox.url}/mj/task/{done['id']}/image-seed", headers=headers)
    assert ok.status_code == 200
    assert list(ok.json()) == ["code", "description", "properties", "result"]
    assert ok.json()["code"] == 1 and ok.json()["result"].isdigit()
    early = httpx.get(f"{sandbox.url}/mj/task/{running['id']}/image-seed", headers=headers)
    assert early.status_code == 200 and early.json()["code"] == 4


def test_the_image_proxy_streams_a_real_2048_png_grid_without_content_length(sandbox):
    task = sandbox.create_task()
    response = httpx.get(f"{sandbox.url}/mj/image/{task['id']}")  # no auth, as in new-api
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert "content-length" not in response.headers
    assert response.headers["transfer-encoding"] == "chunked"
    assert 1_000_000 <= len(response.content) <= 8_000_000
    assert Image.open(io.BytesIO(response.content)).size == (2048, 2048)


def test_the_image_proxy_errors_are_new_apis(sandbox):
    unknown = httpx.get(f"{sandbox.url}/mj/image/1700000000000000")
    assert (unknown.status_code, unknown.json()) == (400, {"error": "midjourney_task_not_found"})
    queued = sandbox.create_task(step_seconds=60)
    blocked = httpx.get(f"{sandbox.url}/mj/image/{queued['id']}")
    assert blocked.status_code == 403
    assert json.loads(blocked.text)["error"] == (
        "request blocked: unsupported protocol:  (only http/https allowed)"
    )


def test_wrong_paths_get_the_spa_page_like_new_api(sandbox):
    response = httpx.get(f"{sandbox.url}/mj/task/list-by-condition")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


def test_submit_returns_an_id_that_fetch_knows(sandbox):
    headers = {"Authorization": f"Bearer {ALICE_TOKEN}"}
    submit = httpx.post(f"{sandbox.url}/mj/submit/imagine", headers=headers, json={"prompt": "cat"})
    assert submit.json()["code"] == 1
    assert sandbox.fetch(submit.json()["result"]).json()["prompt"] == "cat"
