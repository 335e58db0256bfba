"""Single downloads keep readable, safe names, `<prompt-slug>_<id>[_n].<ext>`, and the header
that carries them is valid whatever the prompt holds: quotes, CR/LF, emoji, Chinese."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from django.utils.http import content_disposition_header, parse_header_parameters
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import run_worker, track_new_task
from tracker.thumbnails import download_name

TASK_ID = "1712158011464906"
TYPES = ["image/png", "image/jpeg", "image/webp", "image/gif", "video/mp4", "video/webm"]


def header_name(header: str) -> str:
    """The file name a browser reads back from a Content-Disposition header."""
    _, params = parse_header_parameters(header)
    if "filename*" in params:
        return params["filename*"]
    return params["filename"]


@given(
    prompt=st.text(max_size=300),
    content_type=st.sampled_from(TYPES),
    part=st.sampled_from([None, 0, 1, 2, 3, 4, 11]),
    attachment=st.booleans(),
)
def test_any_prompt_gives_a_safe_name_and_a_valid_header(prompt, content_type, part, attachment):
    name = download_name(prompt, TASK_ID, content_type, part)
    assert re.fullmatch(rf"[\w-]+_{TASK_ID}(_\d|_video\d+)?\.(png|jpg|webp|gif|mp4|webm)", name), (
        name
    )
    assert not name.startswith((".", "-")) and len(name) <= 100
    assert not set(name) & set('/\\:*?"<>|\r\n\t\x00')
    header = content_disposition_header(attachment, name)
    header.encode("latin-1")  # an HTTP header must be
    assert "\r" not in header and "\n" not in header
    assert header.startswith("attachment" if attachment else "inline")
    assert unquote(header_name(header)) == name


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ('A "quoted" fox\r\nX-Injected: 1', "a-quoted-fox-x-injected-1"),
        ("猫 in the rain 🌧️", "猫-in-the-rain"),
        ("🌧️🌧️", "midjourney"),
        ("../../etc/passwd", "etcpasswd"),
    ],
)
def test_the_slug_reads_like_the_prompt(prompt, expected):
    assert download_name(prompt, TASK_ID, "image/png") == f"{expected}_{TASK_ID}.png"
    assert download_name(prompt, TASK_ID, "image/png", 3) == f"{expected}_{TASK_ID}_3.png"


@pytest.mark.django_db(transaction=True)
def test_a_download_of_an_awkward_prompt_has_a_header_browsers_read(alice_client, sandbox):
    task_id = track_new_task(alice_client, sandbox, prompt='猫 "night" \r\n🌧️')
    run_worker()
    for path in (f"/mj/image/{task_id}?download=1", f"/mj/image/{task_id}/2?download=1"):
        response = alice_client.get(path)
        header = response["Content-Disposition"]
        assert header.startswith("attachment; filename*=utf-8''")
        assert unquote(header_name(header)).startswith(f"猫-night_{task_id}")
