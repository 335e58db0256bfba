"""Security section 5: bad input never crashes and never loses data — from a person's paste
or from a gateway's answer. (The paste parser's own properties are in
test_sec5_paste_parser.py.)"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tracemalloc
import uuid

import pytest
from PIL import Image

from tests.conftest import ALICE_TOKEN, ROOT, Answer, use_gateway
from tests.test_scale_out import PG_ADMIN, reachable
from tracker.models import TrackedTask
from tracker.thumbnails import open_picture

pytestmark = pytest.mark.django_db
A, B = "1732000000000001", "1732000000000002"

HOSTILE_PASTES = [
    "[" * 5000,
    "{" * 5000,
    '{"a":' * 3000 + "1" + "}" * 3000,
    "x" * 199_000,
    "a," * 99_000,
    "\x00" * 1000 + A,
    "١٧٣٢٠٠٠٠٠٠٠٠٠١٢٣",
    "１７３２０００００００００１２３",
    "\U0001f600\u0301" * 500,
    "sk-" + "k" * 48,
    "https://evil.example/mj/task/../../etc/passwd/fetch",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "%00%2e%2e%2f",
    "\u202e1732000000000001",
    "9" * 33,
    "1" * 9,
    json.dumps({"result": [A] * 2000}),
    "\n".join(str(1732000000000000 + n) for n in range(1200)),
    " ".join(f"junk{n}" for n in range(20000)),
]


def test_no_hostile_paste_breaks_the_page_or_loses_a_row(alice_client, alice, sandbox):
    kept = sandbox.create_task()["id"]
    alice_client.post("/", {"ids": kept})
    before = list(TrackedTask.objects.filter(task_id=kept).values())
    statuses = [alice_client.post("/", {"ids": paste}).status_code for paste in HOSTILE_PASTES]
    # Each is answered with the dashboard: a redirect with its summary, or the form again
    # with a message (a NUL character is refused by the form itself).
    assert set(statuses) <= {200, 302}, statuses
    assert list(TrackedTask.objects.filter(task_id=kept).values()) == before
    assert alice_client.get("/").status_code == 200


@pytest.fixture
def alice_on_stub(alice_client, alice, stub, settings):
    settings.MJDASH_GATEWAY_RETRIES = 2
    use_gateway(alice, stub.url, "sk-own")
    return alice_client


def test_deeply_nested_json_from_the_gateway_is_an_error_not_a_crash(alice_on_stub, alice, stub):
    stub.answer("/mj/task/list-by-condition", Answer(body=b"[" * 100_000 + b"]" * 100_000))
    assert alice_on_stub.post("/", {"ids": A}).status_code == 302
    assert len(stub.requests) == 1  # permanent: not retried
    assert alice_on_stub.get("/tasks/list/").status_code == 200
    row = TrackedTask.objects.get(user=alice)
    assert "unreadable" in row.last_error


def test_one_task_with_a_deep_field_does_not_spoil_the_others(alice_on_stub, alice, stub):
    deep = {"id": A, "status": "SUCCESS", "properties": {"x": json.loads("[" * 60 + "]" * 60)}}
    fine = {"id": B, "status": "SUCCESS", "prompt": "a fine cat"}
    stub.answer("/mj/task/list-by-condition", Answer(body=json.dumps([deep, fine]).encode()))
    alice_on_stub.post("/", {"ids": f"{A} {B}"})
    assert TrackedTask.objects.get(task_id=B).prompt == "a fine cat"
    stored = TrackedTask.objects.get(task_id=A)
    assert stored.status == "SUCCESS"
    assert depth(stored.raw) <= 20  # the deep part was dropped at the boundary
    assert alice_on_stub.get(f"/tasks/{A}/").status_code == 200


@pytest.mark.parametrize("declared", [True, False], ids=["with-length", "no-length"])
def test_an_oversize_answer_is_refused_once_not_retried(alice_on_stub, alice, stub, declared):
    huge = b"[" + b" " * (5 * 1024 * 1024) + b"]"
    body = huge if declared else (huge[i : i + 65536] for i in range(0, len(huge), 65536))
    stub.answer("/mj/task/list-by-condition", Answer(body=body))
    alice_on_stub.post("/", {"ids": A})
    assert "far too large" in TrackedTask.objects.get(user=alice).last_error
    assert len(stub.requests) == 1
    assert alice_on_stub.get("/").status_code == 200


def test_a_nul_character_in_a_gateway_field_is_stripped_at_the_boundary(alice_client, sandbox):
    task = sandbox.create_task(prompt="a cat\x00 in a hat")["id"]
    alice_client.post("/", {"ids": task})
    row = TrackedTask.objects.get(task_id=task)
    assert row.prompt == "a cat in a hat"
    assert "\x00" not in json.dumps(row.raw)


PG_SCRIPT = """
import json, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth import get_user_model
from tracker.models import TrackedTask
from tracker.gateway import track
user = get_user_model().objects.create_user("pg-alice")
result = track(user, "{task}")
row = TrackedTask.objects.get(task_id="{task}")
print(json.dumps({{"ok": result.gateway_ok, "prompt": row.prompt, "status": row.status}}))
"""


@pytest.mark.skipif(
    not reachable("127.0.0.1", 5432), reason="no PostgreSQL on 127.0.0.1:5432 for this check"
)
def test_a_nul_character_does_not_break_a_postgresql_save(sandbox, tmp_path):
    import psycopg

    task = sandbox.create_task(prompt="nul\x00 on postgres")["id"]
    name = f"mjdash_nul_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "mjdash.settings",
            "DEBUG": "True",
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{name}",
            "MJDASH_GATEWAY_URL": sandbox.url,
            "MJDASH_GATEWAY_TOKEN": ALICE_TOKEN,
            "MJDASH_DATA_DIR": str(tmp_path),
        }
        run = subprocess.run(
            [sys.executable, "-c", PG_SCRIPT.format(task=task)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr[-2000:]
        outcome = json.loads(run.stdout.strip().splitlines()[-1])
        assert outcome == {"ok": True, "prompt": "nul on postgres", "status": "SUCCESS"}
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


def png_declaring(width: int, height: int) -> bytes:
    """A small real PNG whose header claims width × height pixels (a decompression bomb)."""
    out = io.BytesIO()
    Image.new("1", (width, height)).save(out, "PNG", optimize=True)
    return out.getvalue()


@pytest.mark.parametrize("side", [6_000, 10_000], ids=["36-megapixels", "100-megapixels"])
def test_a_tiny_png_declaring_too_many_pixels_is_refused_before_decoding(side):
    bomb = png_declaring(side, side)
    assert len(bomb) < 100_000
    tracemalloc.start()
    with pytest.raises(ValueError, match="than mjdash decodes"):
        open_picture(io.BytesIO(bomb))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 20 * 1024 * 1024


def test_odd_values_in_a_gateways_fields_break_no_page(alice_on_stub, alice, stub):
    odd = {
        "id": A, "status": ["SUCCESS"], "progress": "9" * 400 + "%", "submitTime": 1e999,
        "startTime": -5, "finishTime": "soon", "prompt": "\ud800 broken", "action": {"x": 1},
        "imageUrl": "https://" + "x" * 5000, "buttons": "nope", "imageUrls": {"a": 1},
    }  # fmt: skip
    stub.answer("/mj/task/list-by-condition", Answer(body=json.dumps([odd]).encode()))
    assert alice_on_stub.post("/", {"ids": A}).status_code == 302
    for path in ("/", "/tasks/list/", f"/tasks/{A}/", "/gallery/"):
        assert alice_on_stub.get(path).status_code == 200, path
    row = TrackedTask.objects.get(user=alice)
    assert row.raw and row.last_error == ""  # stored, not refused


@pytest.mark.parametrize(
    "path", ["/tasks/%00/", "/tasks/%00/seed/", "/mj/image/%00", "/tasks/a%2Fb/"]
)
def test_an_id_no_task_can_have_is_a_plain_404(alice_client, path):
    assert alice_client.get(path).status_code == 404
