"""In the page: a toast when a task on screen finishes or fails, the running count in the
title, and a browser notification for a tab in the background once alice turns them on.
In a real headless Chromium, failing on any console error or CSP violation."""

from __future__ import annotations

import re

import pytest

from tests.test_browser import SHOTS, browser_page, log_in
from tests.test_browser import pytestmark as browser_marks

__all__ = ["browser_page"]  # the fixture, shared with test_browser
pytestmark = [*browser_marks, pytest.mark.django_db(transaction=True)]

# The page's own Notification, recording what it is asked to show; and a switch that sends
# the tab to the background while a poll is on its way (a hidden tab polls once a minute).
RECORD_NOTIFICATIONS = """
window.shown = [];
const Real = window.Notification;
window.Notification = class extends Real {
  constructor(title, options) { super(title, options); window.shown.push(options.body); }
};
Object.defineProperty(document, "hidden", { get: () => !!window.inBackground });
document.addEventListener("htmx:beforeSwap", () => { window.inBackground = !!window.goAway; });
"""


def paste(page, ids: list[str]) -> None:
    page.fill("textarea[name=ids]", "\n".join(ids))
    page.click("button:has-text('Track')")


def test_a_toast_says_which_task_finished_or_failed_and_the_title_counts_the_running(
    browser_page, live_server, alice, sandbox, settings
):
    from playwright.sync_api import expect

    settings.MJDASH_POLL_SECONDS = 1
    page, errors = browser_page
    done = sandbox.create_task(step_seconds=0.6, prompt="a fox")["id"]
    failed = sandbox.create_task(step_seconds=0.6, outcome="FAILURE")["id"]
    log_in(page, live_server.url)
    paste(page, [done, failed])
    expect(page).to_have_title(re.compile(r"^\(2\) Tasks · mjdash$"))

    toasts = page.locator("#toasts .toast")
    expect(toasts).to_have_count(2, timeout=20_000)
    expect(page.locator("#toasts")).to_have_attribute("role", "status")
    expect(toasts.filter(has_text=f"Task {done} is done.")).to_have_count(1)
    expect(toasts.filter(has_text=f"Task {failed} failed.")).to_have_count(1)
    expect(page).to_have_title("Tasks · mjdash")
    link = toasts.filter(has_text=done).locator("a")
    expect(link).to_have_attribute("href", f"/tasks/{done}/")

    page.emulate_media(color_scheme="dark")
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "toasts-dark.png"))
    toasts.filter(has_text=failed).get_by_role("button", name="Dismiss").click()
    expect(toasts).to_have_count(1)
    assert errors == [], errors


def test_on_a_phone_the_toast_fits_and_the_task_page_toasts_too(
    browser_page, live_server, alice, sandbox, settings
):
    from playwright.sync_api import expect

    settings.MJDASH_POLL_SECONDS = 1
    page, errors = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    task = sandbox.create_task(step_seconds=0.6)["id"]
    log_in(page, live_server.url)
    paste(page, [task])
    expect(page.locator(f"#task-{task}")).to_be_visible()
    page.goto(f"{live_server.url}/tasks/{task}/")
    expect(page).to_have_title(re.compile(rf"^\(1\) Task {task} · mjdash$"))
    toast = page.locator("#toasts .toast")
    expect(toast).to_have_text(re.compile(rf"Task {task} is done\."), timeout=20_000)
    expect(page).to_have_title(f"Task {task} · mjdash")
    expect(toast.locator("a")).to_have_count(0)  # this page is the task's own
    box = toast.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "toast-phone-light.png"))
    assert errors == [], errors


def test_a_background_tab_shows_a_browser_notification_once_turned_on(
    browser_page, live_server, alice, sandbox, settings
):
    from playwright.sync_api import expect

    settings.MJDASH_POLL_SECONDS = 1
    page, errors = browser_page
    page.context.grant_permissions(["notifications"], origin=live_server.url)
    page.add_init_script(RECORD_NOTIFICATIONS)
    log_in(page, live_server.url)

    page.goto(f"{live_server.url}/settings/")
    button = page.get_by_role("button", name="Turn on browser notifications")
    expect(button).to_be_visible()
    button.click()
    expect(page.locator("[data-notify-state]")).to_have_text(
        "Browser notifications are on in this browser."
    )
    expect(button).to_be_hidden()

    page.goto(f"{live_server.url}/")
    paste(page, [sandbox.create_task(step_seconds=0.6)["id"]])
    page.evaluate("window.goAway = true")
    page.locator("#toasts .toast").wait_for(timeout=20_000)  # the toast, and with it:
    [shown] = page.evaluate("window.shown")
    assert re.fullmatch(r"Task \d+ is done\.", shown)
    assert errors == [], errors


def test_without_opting_in_no_permission_is_asked(
    browser_page, live_server, alice, sandbox, settings
):
    settings.MJDASH_POLL_SECONDS = 1
    page, errors = browser_page
    page.add_init_script(
        "window.asked = 0; const ask = Notification.requestPermission;"
        "Notification.requestPermission = function () { window.asked++; return ask.call(this); };"
    )
    log_in(page, live_server.url)
    paste(page, [sandbox.create_task(step_seconds=0.3)["id"]])
    page.locator("#toasts .toast").wait_for(timeout=20_000)
    page.goto(f"{live_server.url}/settings/")
    assert page.evaluate("window.asked") == 0
    assert errors == [], errors
