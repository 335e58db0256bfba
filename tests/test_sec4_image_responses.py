"""Security section 4: a proxied file can never turn against mjdash's own origin. Its type
comes from its bytes, it carries a sandboxing CSP, and a gateway's Content-Length is checked
before it is believed."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.conftest import Answer, use_gateway

pytestmark = pytest.mark.django_db
TASK = "1732000000000001"
DONE = b'[{"id":"1732000000000001","status":"SUCCESS","imageUrl":"https://cdn.example/x.png"}]'
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>'
PNG = b"\x89PNG\r\n\x1a\n" + bytes(2000)


@pytest.fixture
def alice_on_stub(alice_client, alice, stub):
    stub.answer("/mj/task/list-by-condition", Answer(body=DONE))
    use_gateway(alice, stub.url, "sk-own")
    alice_client.post("/", {"ids": TASK})
    return alice_client


@pytest.mark.parametrize(
    ("declared", "body"),
    [
        ("image/svg+xml", SVG),
        ("image/png", b"<!doctype html><script>alert(1)</script>"),
        ("image/png", SVG),
        ("text/html", b"<html>Just a moment...</html>"),
        ("image/jpeg", b"GIF8"),  # too short to be anything
    ],
)
def test_a_file_that_is_not_a_picture_is_refused_whatever_its_header_says(
    alice_on_stub, stub, declared, body
):
    stub.answer("/mj/image/", Answer(headers={"Content-Type": declared}, body=body))
    response = alice_on_stub.get(f"/mj/image/{TASK}")
    assert not response.streaming
    assert response["Content-Type"].startswith("text/html")  # our own page saying why
    assert b"<script>alert" not in response.content
    assert "not a picture or a video" in response.content.decode()


def test_the_type_comes_from_the_bytes_and_no_gateway_header_passes(alice_on_stub, stub):
    headers = {"Content-Type": "text/html", "Set-Cookie": "sessionid=evil", "X-Evil": "1"}
    stub.answer("/mj/image/", Answer(headers=headers, body=PNG))
    response = alice_on_stub.get(f"/mj/image/{TASK}")
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == PNG
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "X-Evil" not in response and "sessionid" not in str(response.cookies)


def test_the_placeholder_and_thumbnails_carry_the_sandbox_too(alice_on_stub, stub):
    stub.answer("/mj/image/", Answer(status=404, body=b'{"error":"gone"}'))
    response = alice_on_stub.get(f"/mj/image/{TASK}?thumb=1")
    assert response["Content-Type"] == "image/svg+xml"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"


def test_a_content_length_over_the_cap_is_refused_before_the_first_byte(
    alice_on_stub, stub, settings
):
    settings.MJDASH_IMAGE_MAX_BYTES = 1_000_000
    stub.answer(
        "/mj/image/",
        Answer(headers={"Content-Type": "image/png", "Content-Length": str(200 * 1024**2)},
               body=PNG),
    )  # fmt: skip
    response = alice_on_stub.get(f"/mj/image/{TASK}")
    assert not response.streaming
    assert "larger than this site allows" in response.content.decode()


def test_a_checked_content_length_is_passed_on_and_a_short_body_aborts(alice_on_stub, stub):
    stub.answer(
        "/mj/image/",
        Answer(headers={"Content-Type": "image/png", "Content-Length": str(len(PNG) + 500)},
               body=PNG),
    )  # fmt: skip
    response = alice_on_stub.get(f"/mj/image/{TASK}")
    assert response["Content-Length"] == str(len(PNG) + 500)
    with pytest.raises(Exception, match="cut short|dropped the connection"):
        b"".join(response.streaming_content)


def test_an_oversize_image_without_a_length_aborts_instead_of_ending_as_a_download(
    alice_on_stub, stub, settings
):
    settings.MJDASH_IMAGE_MAX_BYTES = 1_000_000
    big = (PNG[:8] + bytes(65536) if i == 0 else bytes(65536) for i in range(40))
    stub.answer("/mj/image/", Answer(headers={"Content-Type": "image/png"}, body=big))
    response = alice_on_stub.get(f"/mj/image/{TASK}?download=1")
    assert "Content-Length" not in response
    with pytest.raises(Exception, match="larger than this site allows"):
        b"".join(response.streaming_content)


def test_a_real_sandbox_image_still_streams_whole(alice_client, sandbox):
    task = sandbox.create_task()["id"]
    alice_client.post("/", {"ids": task})
    response = alice_client.get(f"/mj/image/{task}?download=1")
    body = b"".join(response.streaming_content)
    assert body.startswith(b"\x89PNG") and len(body) > 1_000_000
    assert response["Content-Disposition"].startswith("attachment;")


def test_a_real_picture_carries_the_sandbox_too(alice_on_stub, stub):
    picture = io.BytesIO()
    Image.new("RGB", (64, 64), "teal").save(picture, "PNG")
    stub.answer(
        "/mj/image/", Answer(headers={"Content-Type": "image/png"}, body=picture.getvalue())
    )
    response = alice_on_stub.get(f"/mj/image/{TASK}")
    assert (response.status_code, response["Content-Type"]) == (200, "image/png")
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == picture.getvalue()


def test_mjdash_itself_notices_a_body_shorter_than_its_length():
    """Over real HTTP the parser notices first; this proves mjdash's own check as well."""
    import httpx

    from tracker.upstream import Client

    def short(request):
        return httpx.Response(
            200,
            headers={"Content-Type": "image/png", "Content-Length": str(len(PNG) + 500)},
            stream=httpx.ByteStream(PNG),
        )

    client = Client("https://gw.example", "sk-x", transport=httpx.MockTransport(short))
    with pytest.raises(Exception, match="cut short"):
        client.open_image(TASK).read()
