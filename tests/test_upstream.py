"""The upstream client: real HTTP against the sandbox, and exact faults through MockTransport."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.conftest import ALICE_TOKEN
from tracker.upstream import Client, SeedRefused, UpstreamError, UpstreamTask


def mock_client(handler, timeout: float = 2) -> Client:
    return Client(
        "https://gw.example", "sk-test", transport=httpx.MockTransport(handler), timeout=timeout
    )


def answer(status: int, body: bytes | str | object = b"", content_type="application/json"):
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    return lambda request: httpx.Response(
        status, content=body, headers={"content-type": content_type}
    )


# --- against the sandbox, over HTTP -----------------------------------------------------------


def test_it_fetches_a_task_into_a_typed_object(sandbox):
    task = sandbox.create_task(prompt="a lighthouse")
    with Client(sandbox.url, ALICE_TOKEN, allow_private=True) as client:
        found = client.fetch(task["id"])
    assert found.id == task["id"]
    assert (found.status, found.progress, found.prompt) == ("SUCCESS", "100%", "a lighthouse")
    assert found.finished_at is not None and found.started_at <= found.finished_at
    assert found.buttons[0].label == "U1"


def test_an_unknown_task_is_none_not_an_error(sandbox):
    with Client(sandbox.url, ALICE_TOKEN, allow_private=True) as client:
        assert client.fetch("1700000000000000") is None


@pytest.mark.parametrize("style", ["bearer", "raw", "mj-api-secret"])
def test_every_auth_style_reaches_new_api(sandbox, style):
    task = sandbox.create_task()
    with Client(sandbox.url, ALICE_TOKEN, style, allow_private=True) as client:
        assert [t.id for t in client.list_by_condition([task["id"]])] == [task["id"]]


def test_a_wrong_token_is_a_permanent_error_without_the_request_id(sandbox):
    with (
        Client(sandbox.url, "sk-wrong", allow_private=True) as client,
        pytest.raises(UpstreamError) as caught,
    ):
        client.list_by_condition(["1700000000000000"])
    assert caught.value.permanent
    assert caught.value.message == "The gateway rejected the API token (无效的令牌)."


def test_the_seed_comes_back_when_done_and_a_refusal_in_the_gateways_words_before(sandbox):
    done = sandbox.create_task()
    running = sandbox.create_task(step_seconds=60)
    with Client(sandbox.url, ALICE_TOKEN, allow_private=True) as client:
        assert client.image_seed(done["id"]).isdigit()
        with pytest.raises(SeedRefused, match="refused the seed"):
            client.image_seed(running["id"])


def test_an_image_opens_as_a_stream_of_the_right_type(sandbox):
    task = sandbox.create_task()
    with Client(sandbox.url, ALICE_TOKEN, allow_private=True) as client:
        stream = client.open_image(task["id"])
        assert stream.content_type == "image/png"
        assert stream.read()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_spa_page_is_recognised_as_not_the_api(sandbox):
    with (
        Client(sandbox.url + "/x/y", ALICE_TOKEN, allow_private=True) as client,
        pytest.raises(UpstreamError) as e,
    ):
        client.ping()
    assert "web page" in e.value.message and e.value.permanent


def test_an_unreachable_gateway_is_a_transient_error():
    client = Client("http://127.0.0.1:9", "sk-x", timeout=2, allow_private=True)
    with client, pytest.raises(UpstreamError, match="unreachable") as caught:
        client.list_by_condition(["1700000000000000"])
    assert not caught.value.permanent


# --- shapes (docs/gateway-quirks.md) ----------------------------------------------------------


@pytest.mark.parametrize(
    "image_urls, expected",
    [
        (None, ()),
        ([], ()),
        (["https://cdn/a.png", "https://cdn/b.png"], ("https://cdn/a.png", "https://cdn/b.png")),
        (
            [{"url": "https://cdn/a.png", "thumbnail": "https://cdn/a_640.webp"}],
            ("https://cdn/a.png",),
        ),
        ([{"url": "https://cdn/v/0_0.mp4"}], ("https://cdn/v/0_0.mp4",)),
    ],
)
def test_every_image_urls_shape_parses(image_urls, expected):
    task = UpstreamTask.from_json({"id": "1712158011464906", "imageUrls": image_urls})
    assert task.image_urls == expected


def test_novicezk_nulls_parse_like_new_api_zeros():
    task = UpstreamTask.from_json(
        {"id": "1687918434046123", "status": "FAILURE", "progress": "", "imageUrl": None,
         "startTime": None, "finishTime": 1687918745088, "failReason": "任务超时"}
    )  # fmt: skip
    assert (task.status, task.progress, task.image_url, task.started_at) == (
        "FAILURE",
        "",
        "",
        None,
    )
    assert task.finished_at.year == 2023


def test_an_unknown_status_is_kept_as_it_is():
    assert UpstreamTask.from_json({"id": "1712158011464906", "status": "PAUSED"}).status == "PAUSED"


def test_duplicate_rows_merge_keeping_the_most_advanced_state():
    rows = [
        {"id": "1712158011464906", "status": "IN_PROGRESS", "progress": "46%"},
        {"id": "1712158011464906", "status": "SUCCESS", "progress": "100%"},
        {"id": "1712158011464907", "status": "IN_PROGRESS", "progress": "62%"},
        {"id": "1712158011464907", "status": "IN_PROGRESS", "progress": "15%"},
    ]
    client = mock_client(answer(200, rows))
    found = {t.id: t for t in client.list_by_condition(["1712158011464906", "1712158011464907"])}
    assert found["1712158011464906"].status == "SUCCESS"
    assert found["1712158011464907"].progress == "62%"


def test_rows_are_matched_by_id_and_unasked_ids_are_ignored():
    rows = [{"id": "1712158011464999", "status": "SUCCESS"}, {"id": "1712158011464906"}]
    client = mock_client(answer(200, rows))
    assert [t.id for t in client.list_by_condition(["1712158011464906"])] == ["1712158011464906"]


# --- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "handler, message, permanent",
    [
        (answer(500, b"oops", "text/plain"), "having trouble (HTTP 500)", False),
        (answer(503, {"error": {"message": "system cpu overloaded"}}), "HTTP 503", False),
        (answer(429, b""), "rate limiting", False),
        (answer(200, b"{not json"), "unreadable answer", False),
        (answer(200, b"<html><body>SPA</body></html>", "text/html"), "web page", True),
        (answer(403, {"error": {"message": "no access to model "}}), "refused access", True),
        (answer(400, {"code": 5, "description": "do_request_failed "}), "its own upstream", False),
        (answer(302, b""), "redirected", True),
    ],
)  # fmt: skip
def test_each_failure_becomes_one_human_error(handler, message, permanent):
    with pytest.raises(UpstreamError) as caught:
        mock_client(handler).list_by_condition(["1712158011464906"])
    assert message in caught.value.message
    assert caught.value.permanent is permanent


def test_429_carries_retry_after():
    def handler(request):
        return httpx.Response(429, headers={"Retry-After": "7"})

    with pytest.raises(UpstreamError) as caught:
        mock_client(handler).list_by_condition(["1712158011464906"])
    assert caught.value.retry_after == 7


def test_a_timeout_is_transient():
    def handler(request):
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(UpstreamError, match="did not answer in time") as caught:
        mock_client(handler).fetch("1712158011464906")
    assert not caught.value.permanent


def test_a_drip_fed_answer_is_cut_at_the_overall_deadline():
    def drip():
        for _ in range(100):
            time.sleep(0.05)
            yield b" "

    def handler(request):
        return httpx.Response(200, content=drip(), headers={"content-type": "application/json"})

    started = time.monotonic()
    with pytest.raises(UpstreamError, match="too slowly"):
        mock_client(handler, timeout=1).list_by_condition(["1712158011464906"])
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("status", [200, 204])
def test_novicezk_and_trueai_empty_answers_mean_not_found(status):
    assert mock_client(answer(status, b"")).fetch("1712158011464906") is None


def test_seed_failures_inside_http_200_are_errors():
    body = {"code": 3, "description": "未找到 seed", "properties": {}, "result": ""}
    with pytest.raises(UpstreamError, match="未找到 seed"):
        mock_client(answer(200, body, "text/plain; charset=utf-8")).image_seed("1712158011464906")


def test_an_html_image_answer_is_refused():
    with pytest.raises(UpstreamError, match="not a picture or a video"):
        mock_client(answer(200, b"<html>challenge</html>", "text/html")).open_image(
            "1712158011464906"
        )


def test_an_expired_image_is_a_permanent_error():
    handler = answer(404, {"error": "This content is no longer available."})
    with pytest.raises(UpstreamError, match="no longer available") as caught:
        mock_client(handler).open_image("1712158011464906")
    assert caught.value.permanent


def test_an_oversized_image_is_refused_by_its_declared_length_before_any_byte():
    handler = answer(200, b"\x89PNG\r\n\x1a\n" + b"0" * 300_000, "image/png")
    with pytest.raises(UpstreamError, match="larger than"):
        mock_client(handler).open_image("1712158011464906", max_bytes=100_000)


def test_an_oversized_image_with_no_length_is_cut_off():
    body = [b"\x89PNG\r\n\x1a\n" + b"0" * 50_000] * 6
    handler = lambda request: httpx.Response(  # noqa: E731
        200, stream=httpx.ByteStream(b"".join(body)), headers={"content-type": "image/png"}
    )
    stream = mock_client(handler).open_image("1712158011464906", max_bytes=100_000)
    with pytest.raises(UpstreamError, match="larger than"):
        stream.read()


def test_a_task_id_cannot_change_the_path():
    with pytest.raises(UpstreamError, match="not a valid task ID"):
        mock_client(answer(200, {})).fetch("../../admin")
