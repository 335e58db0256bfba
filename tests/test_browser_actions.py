"""In a real headless Chromium: U1 on a finished grid starts its upscale, which appears and
runs to the end on its own page; a new job from the dashboard's Imagine form shows up running
in the list. Any console error or CSP violation fails the test."""

from __future__ import annotations

from tests.test_browser import SHOTS, browser_page, log_in
from tests.test_browser import pytestmark as browser_marks
from tracker.models import TrackedTask

__all__ = ["browser_page"]  # the fixture, shared with test_browser
pytestmark = browser_marks


def test_u1_on_a_finished_grid_starts_an_upscale_that_appears_and_progresses(
    browser_page, live_server, alice, sandbox, settings
):
    from playwright.sync_api import expect

    settings.MJDASH_POLL_SECONDS = 1
    page, errors = browser_page
    grid = sandbox.create_task(step_seconds=0, prompt="a lighthouse at dusk")
    log_in(page, live_server.url)
    page.fill("textarea[name=ids]", grid["id"])
    page.click("button:has-text('Track')")
    expect(page.locator(".paste-result")).to_contain_text("1 added")
    page.goto(f"{live_server.url}/tasks/{grid['id']}/")

    page.click("button.mj-action:text-is('U1')")
    page.wait_for_url(lambda url: grid["id"] not in url)  # off to the new task's own page
    child = TrackedTask.objects.get(parent_task_id=grid["id"])
    assert page.url.endswith(f"/tasks/{child.task_id}/")
    expect(page.locator(".messages")).to_contain_text(f"Started task {child.task_id}")
    expect(page.locator("#task-panel")).to_contain_text("UPSCALE", timeout=10_000)
    expect(page.locator("#task-panel progress[value='100']")).to_be_visible(timeout=20_000)
    expect(page.locator("#task-panel .mj-actions")).to_contain_text("Vary (Strong)")
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "actions-upscale-desktop.png"), full_page=True)
    assert errors == []


def test_imagine_from_the_dashboard_on_a_phone(browser_page, live_server, alice, sandbox, settings):
    from playwright.sync_api import expect

    settings.MJDASH_POLL_SECONDS = 1
    page, errors = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server.url)
    page.click("#imagine-panel summary")
    page.fill("#imagine-panel textarea[name=prompt]", "a paper boat on a pond")
    page.click("#imagine-panel button[type=submit]")
    expect(page.locator("#imagine-panel .ok")).to_contain_text("is tracked and runs below")
    expect(page.locator(".task")).to_have_count(1)
    expect(page.locator(".task")).to_contain_text("a paper boat on a pond")
    expect(page.locator("progress[value='100']")).to_have_count(1, timeout=20_000)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways ({width} px)"
    page.screenshot(path=str(SHOTS / "imagine-phone.png"), full_page=True)
    assert errors == []
