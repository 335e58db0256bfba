"""The sandbox answers like new-api does on the wire (docs/gateway-quirks.md).

mjdash's other tests are only as honest as this stand-in, so its quirks are pinned here.
"""

from __future__ import annotations

import http.client
import io
import json
import struct
import time
import zlib

import httpx
import pytest
from PIL import Image

from sandbox import launch
from tests.conftest import (
    ALICE_TOKEN,
    BOB_TOKEN,
    NOVICEZK_TOKEN,
    TRUEAI_TOKEN,
    start_sandbox,
    wait_until,
)

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


def test_it_remembers_which_ids_each_status_call_asked_about_until_reset(sandbox):
    task = sandbox.create_task()
    sandbox.reset_stats()
    headers = {"Authorization": f"Bearer {ALICE_TOKEN}"}
    list_url = f"{sandbox.url}/mj/task/list-by-condition"
    httpx.post(list_url, headers=headers, json={"ids": ["1", "2"]})
    httpx.get(f"{sandbox.url}/mj/task/{task['id']}/fetch", headers=headers)
    asked = sandbox.asked()
    assert [(call["caller"], call["ids"]) for call in asked] == [
        ("alice", ["1", "2"]),
        ("alice", [task["id"]]),
    ]
    assert asked[0]["at"] <= asked[1]["at"] <= time.time()
    sandbox.reset_stats()
    assert sandbox.asked() == []


def test_each_status_call_names_the_port_it_came_from(sandbox):
    """So a load test can tell which process asked (its connections' ports)."""
    host, port = sandbox.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.connect()
    mine = connection.sock.getsockname()[1]
    headers = {"Authorization": f"Bearer {ALICE_TOKEN}", "Content-Type": "application/json"}
    connection.request("POST", "/mj/task/list-by-condition", b'{"ids": ["1"]}', headers)
    connection.getresponse().read()
    connection.close()
    assert sandbox.asked()[-1]["port"] == mine


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


# --- the CDN: files on another host name ----------------------------------------------------

NOVICEZK = {"mj-api-secret": NOVICEZK_TOKEN}
TRUEAI = {"Authorization": TRUEAI_TOKEN}  # trueai takes the raw token, no Bearer


def cdn_address(sandbox) -> str:
    """The sandbox's default CDN: the same server, named localhost instead of 127.0.0.1."""
    return sandbox.url.replace("://127.0.0.1:", "://localhost:")


def fetch_as(sandbox, task_id: str, headers: dict) -> dict:
    response = httpx.get(f"{sandbox.url}/mj/task/{task_id}/fetch", headers=headers)
    response.raise_for_status()
    return response.json()


def test_direct_gateways_and_image_urls_link_files_on_the_cdn_host(sandbox):
    cdn = cdn_address(sandbox)
    task_id = sandbox.create_task(token=TRUEAI_TOKEN)["id"]
    trueai = fetch_as(sandbox, task_id, TRUEAI)
    assert trueai["imageUrl"] == f"{cdn}/attachments/{task_id}/grid_0.png"
    links = [link for entry in trueai["imageUrls"] for link in entry.values()]
    assert len(set(links)) == 8 and all(link.startswith(f"{cdn}/attachments/") for link in links)
    novicezk_id = sandbox.create_task(token=NOVICEZK_TOKEN)["id"]
    novicezk = fetch_as(sandbox, novicezk_id, NOVICEZK)
    assert novicezk["imageUrl"] == f"{cdn}/attachments/{novicezk_id}/grid_0.png"
    new_api = sandbox.create_task(image_urls_shape="strings")
    assert new_api["imageUrl"] == f"{sandbox.url}/mj/image/{new_api['id']}"  # its own proxy
    assert all(url.startswith(f"{cdn}/attachments/") for url in new_api["imageUrls"])
    grid = httpx.get(trueai["imageUrl"])
    assert grid.status_code == 200 and grid.headers["content-type"] == "image/png"
    assert int(grid.headers["content-length"]) == len(grid.content)


def test_the_cdn_address_can_be_set(tmp_path):
    box = start_sandbox(tmp_path, "--cdn-address", "http://cdn.example:8080")
    try:
        task_id = box.create_task(token=TRUEAI_TOKEN)["id"]
        body = fetch_as(box, task_id, TRUEAI)
        assert body["imageUrl"] == f"http://cdn.example:8080/attachments/{task_id}/grid_0.png"
    finally:
        launch.stop(box.process)


def test_each_picture_of_a_grid_is_its_own_1024_png_with_a_small_webp_thumbnail(sandbox):
    task_id = sandbox.create_task(token=TRUEAI_TOKEN)["id"]
    body = fetch_as(sandbox, task_id, TRUEAI)
    answers = [httpx.get(entry["url"]) for entry in body["imageUrls"]]
    assert {a.headers["content-type"] for a in answers} == {"image/png"}
    pictures = [Image.open(io.BytesIO(a.content)) for a in answers]
    assert {p.size for p in pictures} == {(1024, 1024)}
    assert len({a.content for a in answers}) == 4
    grid = Image.open(io.BytesIO(httpx.get(body["imageUrl"]).content))
    assert pictures[1].tobytes() == grid.crop((1024, 0, 2048, 1024)).tobytes()
    assert pictures[2].tobytes() == grid.crop((0, 1024, 1024, 2048)).tobytes()
    thumbnail = httpx.get(body["imageUrls"][3]["thumbnail"])
    assert thumbnail.headers["content-type"] == "image/webp"
    assert thumbnail.content[:4] == b"RIFF" and thumbnail.content[8:12] == b"WEBP"
    assert len(thumbnail.content) < 100_000
    assert Image.open(io.BytesIO(thumbnail.content)).size == (640, 640)


def test_a_video_task_serves_real_clips_that_differ_per_task_and_per_clip(sandbox):
    cdn = cdn_address(sandbox)
    first, second = (sandbox.create_task(token=TRUEAI_TOKEN, action="VIDEO") for _ in range(2))
    one, two = (fetch_as(sandbox, task["id"], TRUEAI) for task in (first, second))
    assert one["videoUrl"] == f"{cdn}/video/{first['id']}/0_0.mp4"
    assert [v["url"] for v in one["videoUrls"]] == [i["url"] for i in one["imageUrls"]]
    assert all(v["url"].startswith(f"{cdn}/video/") for v in one["videoUrls"])
    assert sandbox.create_task(action="VIDEO")["videoUrl"].startswith(f"{cdn}/video/")
    clip = httpx.get(one["videoUrl"])
    assert clip.headers["content-type"] == "video/mp4"
    assert int(clip.headers["content-length"]) == len(clip.content)
    assert clip.content[4:12] == b"ftypisom" and 10_000 < len(clip.content) < 1_000_000
    others = [httpx.get(two["videoUrl"]).content, httpx.get(one["videoUrls"][1]["url"]).content]
    assert len({clip.content, *others}) == 3
    legacy = httpx.get(f"{sandbox.url}/_sandbox/video/{first['id']}.mp4")
    assert legacy.status_code == 200 and legacy.content[4:8] == b"ftyp"
    webm = httpx.get(one["videoUrl"].removesuffix(".mp4") + ".webm")
    assert webm.headers["content-type"] == "video/webm"
    assert webm.content.startswith(b"\x1a\x45\xdf\xa3")
    assert webm.content != httpx.get(two["videoUrl"].removesuffix(".mp4") + ".webm").content


@pytest.mark.parametrize(("ext", "codec"), [("mp4", "h264"), ("webm", "vp9")])
def test_a_clip_marked_with_its_task_still_decodes_to_every_frame(sandbox, ext, codec):
    av = pytest.importorskip("av")
    task_id = sandbox.create_task(action="VIDEO")["id"]
    body = httpx.get(f"{cdn_address(sandbox)}/video/{task_id}/0_2.{ext}").content
    with av.open(io.BytesIO(body)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert stream.codec_context.name == codec
    assert len(frames) >= 24 and (frames[0].width, frames[0].height) == (256, 256)


def test_cdn_and_video_requests_are_counted_and_the_hooks_are_not(sandbox):
    task_id = sandbox.create_task(action="VIDEO")["id"]
    sandbox.reset_stats()
    assert httpx.get(f"{cdn_address(sandbox)}/attachments/{task_id}/grid_0.png").status_code == 200
    assert httpx.get(f"{cdn_address(sandbox)}/video/{task_id}/0_3.mp4").status_code == 200
    assert httpx.get(f"{sandbox.url}/_sandbox/video/{task_id}.mp4").status_code == 200
    httpx.get(f"{sandbox.url}/_sandbox/health")
    assert sandbox.stats() == {"attachment": 1, "video": 2}


# --- unsafe answers from image hosts --------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def picture_on_the_cdn(sandbox) -> str:
    """The URL of one picture of a finished grid on the CDN."""
    return f"{cdn_address(sandbox)}/attachments/{sandbox.create_task()['id']}/0_1.png"


def test_every_fault_kind_has_an_answer():
    from sandbox.faults import KINDS
    from sandbox.server import FAULT_ANSWERS

    shaping = {"latency", "drip", "truncated", "accepted_hang", "duplicates", "shuffle"}
    assert set(FAULT_ANSWERS) == KINDS - shaping


def test_an_oversized_attachment_streams_past_its_size_with_no_length(sandbox):
    url = picture_on_the_cdn(sandbox)
    sandbox.fault("attachment", "oversized", mb=1, times=1)
    response = httpx.get(url)
    assert response.headers["content-type"] == "image/png"
    assert "content-length" not in response.headers
    assert response.content.startswith(PNG_SIGNATURE) and len(response.content) == 1024 * 1024


def test_an_oversized_header_declares_megabytes_then_hangs_up(sandbox):
    url = picture_on_the_cdn(sandbox)
    sandbox.fault("attachment", "oversized_header", mb=50, times=1)
    with httpx.stream("GET", url) as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(50 * 1024 * 1024)
        with pytest.raises(httpx.RemoteProtocolError):
            response.read()


def test_an_html_attachment_is_a_page(sandbox):
    url = picture_on_the_cdn(sandbox)
    sandbox.fault("attachment", "html", times=1)
    response = httpx.get(url)
    assert response.status_code == 200 and response.headers["content-type"] == "text/html"
    assert response.content.startswith(b"<!doctype html>")


def test_an_svg_attachment_says_it_is_a_png(sandbox):
    url = picture_on_the_cdn(sandbox)
    sandbox.fault("attachment", "svg", times=1)
    response = httpx.get(url)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"<svg xmlns=") and b"onload=" in response.content


def test_a_redirected_attachment_points_elsewhere(sandbox):
    url = picture_on_the_cdn(sandbox)
    sandbox.fault("attachment", "redirect", location="http://10.0.0.1/secret", times=1)
    response = httpx.get(url)
    assert response.status_code == 302
    assert response.headers["location"] == "http://10.0.0.1/secret"


def test_a_dripping_attachment_sends_one_byte_at_a_time(sandbox):
    url = picture_on_the_cdn(sandbox)
    httpx.get(url).raise_for_status()  # drawn before the clock starts
    sandbox.fault("attachment", "drip", seconds=0.005, times=1)
    received, started = b"", time.monotonic()
    with httpx.stream("GET", url) as response, pytest.raises(httpx.RemoteProtocolError):
        for chunk in response.iter_raw():
            received += chunk
    assert received.startswith(PNG_SIGNATURE) and len(received) == 200
    assert time.monotonic() - started >= 200 * 0.005


def test_a_bomb_attachment_is_small_on_the_wire_and_huge_decoded(sandbox):
    url = picture_on_the_cdn(sandbox)
    sandbox.fault("attachment", "bomb", times=1)
    response = httpx.get(url)
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(PNG_SIGNATURE) and len(response.content) < 200_000
    chunks = png_chunks(response.content)
    assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    assert struct.unpack(">II", chunks[0][1][:8]) == (10_000, 10_000)
    assert inflated_size(chunks[1][1]) == 10_000 * (1 + 10_000)  # a filter byte per row


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The (type, data) of each chunk after the signature, every CRC checked."""
    chunks, pos = [], len(PNG_SIGNATURE)
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        chunks.append((kind, body))
        pos += 12 + length
    return chunks


def inflated_size(compressed: bytes) -> int:
    """How many bytes a zlib stream inflates to, counted a megabyte at a time."""
    inflater, total, pending = zlib.decompressobj(), 0, compressed
    while pending:
        total += len(inflater.decompress(pending, 1 << 20))
        pending = inflater.unconsumed_tail
    assert inflater.eof
    return total + len(inflater.flush())


@pytest.mark.parametrize("endpoint", ["attachment", "video"])
def test_an_expired_file_on_the_cdn_is_discords_plain_text(sandbox, endpoint):
    task_id = sandbox.create_task(action="VIDEO")["id"]
    urls = {
        "attachment": f"{cdn_address(sandbox)}/attachments/{task_id}/0_0.png",
        "video": f"{cdn_address(sandbox)}/video/{task_id}/0_0.mp4",
    }
    sandbox.fault(endpoint, "expired", status=403, times=1)
    response = httpx.get(urls[endpoint])
    assert response.status_code == 403
    assert response.text == "This content is no longer available."


def test_file_faults_on_video_look_like_video(sandbox):
    url = f"{cdn_address(sandbox)}/video/{sandbox.create_task(action='VIDEO')['id']}/0_0.mp4"
    sandbox.fault("video", "oversized", mb=1, times=1)
    oversized = httpx.get(url)
    assert oversized.headers["content-type"] == "video/mp4"
    assert oversized.content[4:8] == b"ftyp" and len(oversized.content) == 1024 * 1024
    sandbox.fault("video", "svg", times=1)
    assert httpx.get(url).content.startswith(b"<svg")
    assert httpx.get(url).content[4:8] == b"ftyp"  # the faults were used up
