"""The pages as a person sees them, in both languages, on a desktop and on a phone: the task
list (running, done, failed, tagged, a favourite) and a task with its related tasks. No
console error or CSP violation, nothing wider than the screen, and a screenshot of each in
/tmp/shots to look at by eye."""

from __future__ import annotations

import pytest

from tests.conftest import TRUEAI_TOKEN, use_gateway
from tests.test_browser import CHROMIUM, SHOTS, alice_tracks, browser_page, log_in  # noqa: F401
from tracker import tagging
from tracker.models import TrackedTask

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def alices_work(alice, sandbox) -> dict[str, str]:
    use_gateway(alice, sandbox.url, TRUEAI_TOKEN, "raw")
    (grid,) = alice_tracks(
        alice, sandbox,
        {"token": TRUEAI_TOKEN, "prompt": "a red fox in the snow, cinematic light --ar 1:1"},
    )  # fmt: skip
    upscale, failed, _running = alice_tracks(
        alice, sandbox,
        {"token": TRUEAI_TOKEN, "action": "UPSCALE", "prompt": "a red fox in the snow",
         "parent_id": grid},
        {"token": TRUEAI_TOKEN, "prompt": "一只在雪地里的狐狸", "outcome": "failure",
         "fail_reason": "任务超时"},
        {"token": TRUEAI_TOKEN, "prompt": "an owl at dusk 🦉", "step_seconds": 600},
        archive=False,
    )  # fmt: skip
    row = TrackedTask.objects.get(task_id=grid)
    tagging.replace(row, "portraits, client work, 狐狸")
    TrackedTask.objects.filter(pk=row.pk).update(favourite=True, note="Send to Mia")
    return {"grid": grid, "upscale": upscale, "failed": failed}


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_task_pages_in_both_languages_on_a_desktop_and_a_phone(
    browser_page,  # noqa: F811
    live_server,
    alices_work,
    width,
    language,
):
    from playwright.sync_api import expect

    page, errors = browser_page
    page.set_viewport_size({"width": width, "height": 900 if width > 390 else 844})
    page.context.add_cookies(
        [{"name": "django_language", "value": language, "url": live_server.url}]
    )
    log_in(page, live_server.url)
    SHOTS.mkdir(exist_ok=True)
    problems: dict[str, object] = {}

    def look(name: str, path: str) -> None:
        page.goto(live_server.url + path)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(SHOTS / f"{name}-{language}-{width}.png"), full_page=True)
        scroll = page.evaluate("document.documentElement.scrollWidth")
        if scroll > width:
            problems[f"{name}: scrolls sideways"] = scroll
        if errors:
            problems[f"{name}: console"] = list(errors)
            errors.clear()

    look("dashboard", "/")
    expect(page.locator(".tag", has_text="狐狸")).to_be_visible()
    expect(page.locator(f"#task-{alices_work['failed']} .fail-reason")).to_contain_text("任务超时")
    look("task", f"/tasks/{alices_work['grid']}/")
    expect(page.locator(f"a[href='/tasks/{alices_work['upscale']}/']")).to_be_visible()
    look("filtered", "/?tag=client+work&status=done")
    assert problems == {}, problems
