"""Alice opens one task: every detail, the seed, a re-check, and untracking it."""

from __future__ import annotations

import pytest
from django.utils.html import strip_tags

from tests.conftest import track_new_task, wait_until
from tracker.models import Gateway, TrackedTask

pytestmark = pytest.mark.django_db


@pytest.fixture
def tracked(alice_client, sandbox):
    return track_new_task(alice_client, sandbox, prompt="a lighthouse at dusk --ar 1:1")


@pytest.mark.parametrize("suffix", ["", "seed/", "untrack/"])
def test_every_task_page_requires_login(client, suffix):
    response = client.get(f"/tasks/1712158011464906/{suffix}")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/tasks/{id}/"),
        ("get", "/tasks/{id}/?poll=1"),
        ("get", "/tasks/{id}/seed/"),
        ("post", "/tasks/{id}/recheck/"),
        ("get", "/tasks/{id}/untrack/"),
        ("post", "/tasks/{id}/untrack/"),
        ("get", "/mj/image/{id}"),
        ("get", "/mj/image/{id}?download=1"),
        ("get", "/mj/image/{id}?thumb=1"),
    ],
)
def test_a_stranger_gets_404_on_every_task_route(bob_client, tracked, method, path):
    response = getattr(bob_client, method)(path.format(id=tracked))
    assert response.status_code == 404
    assert TrackedTask.objects.filter(task_id=tracked).exists()


def test_the_detail_page_shows_every_field_in_human_form(alice_client, tracked):
    response = alice_client.get(f"/tasks/{tracked}/")
    body = response.content.decode()
    assert response.status_code == 200
    for expected in ["Done", "IMAGINE", "a lighthouse at dusk --ar 1:1", "Copy prompt", "U1", "V4",
                     "Download image", "Duration", "提交成功", "Show seed"]:  # fmt: skip
        assert expected in body, expected
    assert f"/mj/image/{tracked}?download=1" in body


def test_the_seed_button_shows_the_seed(alice_client, tracked):
    response = alice_client.get(f"/tasks/{tracked}/seed/", headers={"HX-Request": "true"})
    body = response.content.decode()
    assert 'id="seed"' in body and "<html" not in body
    assert 'class="seed"' in body and "Copy seed" in body


def test_the_seed_of_an_unfinished_task_is_a_clear_message(alice_client, sandbox):
    task = sandbox.create_task(step_seconds=60)
    alice_client.post("/", {"ids": task["id"]})
    response = alice_client.get(f"/tasks/{task['id']}/seed/")
    assert b"The seed is available once the task has finished." in response.content


def test_a_finished_task_whose_seed_is_refused_says_so_in_the_gateways_words(
    alice_client, alice, stub
):
    from tests.conftest import Answer, use_gateway

    done = b'[{"id":"1732000000000001","status":"SUCCESS","progress":"100%"}]'
    refused = '{"code":4,"description":"关联任务状态错误","result":""}'.encode()
    stub.answer("/mj/task/list-by-condition", Answer(body=done))
    stub.answer("/mj/task/1732000000000001/image-seed", Answer(body=refused))
    use_gateway(alice, stub.url, "sk-own")
    alice_client.post("/", {"ids": "1732000000000001"})
    page = alice_client.get("/tasks/1732000000000001/seed/").content.decode()
    assert "once the task has finished" not in page
    said = "The gateway refused the seed for this task (关联任务状态错误)."
    assert said in strip_tags(page)  # the gateway's words as they are, and marked as its own
    assert '<q class="gateway-words" lang="zh" title="The gateway&#x27;s own words">关联' in page


def test_the_seed_works_without_javascript(alice_client, tracked):
    response = alice_client.get(f"/tasks/{tracked}/seed/")
    assert b"<html" in response.content and b"Copy seed" in response.content


def test_an_unfinished_task_panel_polls_and_stops_when_done(alice_client, sandbox):
    task = sandbox.create_task(step_seconds=0.2)
    alice_client.post("/", {"ids": task["id"]})
    page = alice_client.get(f"/tasks/{task['id']}/").content.decode()
    assert "?poll=1" in page

    def panel_when_done():
        response = alice_client.get(f"/tasks/{task['id']}/?poll=1", headers={"HX-Request": "true"})
        return response if response.status_code == 286 else None

    final = wait_until(panel_when_done)
    assert "Done" in final.content.decode() and "?poll=1" not in final.content.decode()


def test_recheck_asks_the_gateway_for_this_one_task(alice_client, alice, sandbox):
    task = sandbox.create_task(step_seconds=0)
    connection = Gateway.site_default()
    TrackedTask.objects.create(user=alice, task_id=task["id"], gateway=connection)
    sandbox.reset_stats()
    response = alice_client.post(f"/tasks/{task['id']}/recheck/", follow=True)
    assert f"Checked {task['id']} with the gateway just now.".encode() in response.content
    assert sandbox.stats() == {"fetch": 1}
    assert TrackedTask.objects.get(user=alice).status == "SUCCESS"


def test_untrack_asks_first_then_removes_only_that_row(alice_client, alice, tracked, sandbox):
    other = sandbox.create_task()
    alice_client.post("/", {"ids": other["id"]})
    confirm = alice_client.get(f"/tasks/{tracked}/untrack/")
    assert b"Stop tracking this task?" in confirm.content
    assert TrackedTask.objects.filter(user=alice).count() == 2
    response = alice_client.post(f"/tasks/{tracked}/untrack/", follow=True)
    assert f"Stopped tracking {tracked}.".encode() in response.content
    assert list(TrackedTask.objects.filter(user=alice).values_list("task_id", flat=True)) == [
        other["id"]
    ]
