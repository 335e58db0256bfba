"""Security, issue 9: every fetch of an image, from the gateway or an image host, follows one
set of rules, and an unsafe answer is refused with nothing stored. Each case is a real HTTP
answer from the sandbox; the archive worker is the one that meets it."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.storage import storages

from tests.conftest import NOVICEZK_TOKEN, run_worker, track_new_task, use_gateway
from tracker.models import Blob, TrackedTask

pytestmark = pytest.mark.django_db(transaction=True)

# name: (fault kind, its parameters, settings for the case, what the task page then says)
UNSAFE = {
    "oversize by header": ("oversized_header", {"mb": 60}, {}, "larger than this site allows"),
    "oversize by count": (
        "oversized",
        {"mb": 8},
        {"MJDASH_IMAGE_MAX_BYTES": 4 * 1024 * 1024},
        "larger than this site allows",
    ),
    "HTML served as 200": ("html", {}, {}, "not a picture or a video"),
    "SVG labelled as PNG": ("svg", {}, {}, "not a picture or a video"),
    "redirect to another host": (
        "redirect",
        {"location": "http://169.254.169.254/latest/meta-data/x.png"},
        {},
        "not an allowed image host",
    ),
    "slow drip": ("drip", {"seconds": 0.3}, {"MJDASH_IMAGE_TIMEOUT": 1}, "took too long"),
    "decompression bomb": ("bomb", {}, {}, "not a picture mjdash can read"),
}


def stored_files() -> list[Path]:
    root = Path(storages["archive"].location)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def assert_refused(task_id: str, message: str) -> TrackedTask:
    row = TrackedTask.objects.get(task_id=task_id)
    assert row.archived_at is None
    assert message in row.archive_error, row.archive_error
    assert stored_files() == [] and Blob.objects.count() == 0
    assert not row.files.exists()
    return row


@pytest.mark.parametrize("case", UNSAFE)
def test_an_unsafe_image_from_the_gateway_is_refused_and_nothing_is_kept(
    alice_client, sandbox, settings, case
):
    kind, params, overrides, message = UNSAFE[case]
    for name, value in overrides.items():
        setattr(settings, name, value)
    task_id = track_new_task(alice_client, sandbox)
    sandbox.fault("image", kind, **params)
    run_worker()
    assert_refused(task_id, message)
    page = alice_client.get(f"/tasks/{task_id}/").content.decode()
    assert "Not archived yet:" in page


@pytest.mark.parametrize(
    "case",
    ["oversize by header", "SVG labelled as PNG", "redirect to another host", "decompression bomb"],
)
def test_an_unsafe_image_on_an_image_host_is_refused_the_same_way(
    alice_client, alice, sandbox, settings, case
):
    kind, params, overrides, message = UNSAFE[case]
    use_gateway(alice, sandbox.url, NOVICEZK_TOKEN, "mj-api-secret")  # images on the CDN
    task_id = track_new_task(alice_client, sandbox, token=NOVICEZK_TOKEN)
    assert TrackedTask.objects.get(task_id=task_id).image_url.startswith("http://localhost:")
    sandbox.fault("attachment", kind, **params)
    run_worker()
    assert_refused(task_id, message)


def test_an_image_host_that_resolves_to_a_private_address_is_refused(
    alice_client, alice, sandbox, settings
):
    use_gateway(alice, sandbox.url, NOVICEZK_TOKEN, "mj-api-secret")
    task_id = track_new_task(alice_client, sandbox, token=NOVICEZK_TOKEN)
    settings.MJDASH_ALLOW_PRIVATE_GATEWAYS = False  # "localhost" is allowed, 127.0.0.1 is not
    sandbox.reset_stats()
    run_worker()
    assert_refused(task_id, "not a public address")
    assert "attachment" not in sandbox.stats()  # refused at connect time, before a byte


def test_a_host_not_on_the_list_is_never_asked(alice_client, alice, sandbox, settings):
    use_gateway(alice, sandbox.url, NOVICEZK_TOKEN, "mj-api-secret")
    task_id = track_new_task(alice_client, sandbox, token=NOVICEZK_TOKEN)
    settings.MJDASH_IMAGE_HOSTS = ["cdn.midjourney.com"]
    sandbox.reset_stats()
    run_worker()
    assert_refused(task_id, "not an allowed image host")
    assert "attachment" not in sandbox.stats()


def test_the_image_host_never_sees_the_gateway_token(alice_client, alice, sandbox):
    """The CDN fetch carries no credentials: the sandbox's CDN route would accept any."""
    use_gateway(alice, sandbox.url, NOVICEZK_TOKEN, "mj-api-secret")
    task_id = track_new_task(alice_client, sandbox, token=NOVICEZK_TOKEN)
    run_worker()
    row = TrackedTask.objects.get(task_id=task_id)
    assert row.archived_at is not None, row.archive_error
    assert row.files.get(part=0).source_url.startswith("http://localhost:")


def test_an_image_host_is_allowed_on_its_standard_ports_only(
    alice_client, alice, sandbox, settings
):
    use_gateway(alice, sandbox.url, NOVICEZK_TOKEN, "mj-api-secret")
    task_id = track_new_task(alice_client, sandbox, token=NOVICEZK_TOKEN)
    settings.MJDASH_IMAGE_HOSTS = ["localhost"]  # the sandbox's CDN is on another port
    sandbox.reset_stats()
    run_worker()
    assert_refused(task_id, "not an allowed image host")
    assert "attachment" not in sandbox.stats()
