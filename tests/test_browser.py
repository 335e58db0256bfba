"""End to end in a real headless Chromium: log in, paste IDs, watch them finish, polling stops."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import PASSWORD

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Debian's chromium is not installed: apt-get install chromium (bin/test does)",
    ),
]


@pytest.fixture
def browser_page(live_server):
    # Playwright's sync API keeps an event loop in this thread; our ORM calls here are plain sync.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # Any CSP violation fails the test, whether or not the browser also logs it.
        page.expose_function("reportViolation", lambda text: errors.append(text))
        page.add_init_script(
            "document.addEventListener('securitypolicyviolation', e => "
            "window.reportViolation('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI))"
        )
        yield page, errors
        # Let in-flight image requests finish, so none reaches the sandbox during a later test.
        page.wait_for_load_state("networkidle")
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def log_in(page, base_url: str) -> None:
    page.goto(f"{base_url}/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")


def test_alice_pastes_ids_and_watches_them_reach_100_percent(
    browser_page, live_server, alice, sandbox, settings
):
    from playwright.sync_api import expect

    settings.MJDASH_POLL_SECONDS = 1
    page, errors = browser_page
    ids = [sandbox.create_task(step_seconds=0.5, prompt=f"fox number {i}")["id"] for i in range(3)]
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "/tasks/list/" in r.url else None)

    log_in(page, live_server.url)
    page.fill("textarea[name=ids]", "\n".join(ids) + "\nnot-an-id")
    page.click("button:has-text('Track')")
    expect(page.locator(".paste-result")).to_contain_text("3 added")
    expect(page.locator(".paste-result")).to_contain_text("not-an-id")
    expect(page.locator(".task")).to_have_count(3)

    # The bars move while the tasks run, then all three reach 100%.
    expect(page.locator("progress[value='100']")).to_have_count(3, timeout=20_000)
    assert len(polls) >= 2, "the list did not poll while the tasks ran"
    expect(page.locator(".badge.success")).to_have_count(3)
    expect(page.locator("#summary")).to_contain_text("3 done")

    # Polling stops: no more requests to the list once everything is finished. (Wait with
    # wait_for_timeout, not time.sleep: Playwright only delivers events while it runs.)
    page.wait_for_timeout(1500)
    settled = len(polls)
    page.wait_for_timeout(4000)  # four poll intervals
    assert len(polls) == settled, "the list kept polling after every task finished"

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-finished.png"))
    assert errors == [], errors


def test_on_a_phone_the_detail_page_shows_the_image_and_the_seed(
    browser_page, live_server, alice, sandbox
):
    from playwright.sync_api import expect

    page, errors = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    task = sandbox.create_task(prompt="a lighthouse")
    log_in(page, live_server.url)
    page.fill("textarea[name=ids]", task["id"])
    page.keyboard.press("Control+Enter")
    expect(page.locator(".task")).to_have_count(1)
    page.click(f"a.task-id:has-text('{task['id']}')")
    expect(page.locator("img.full")).to_be_visible()
    page.wait_for_function("document.querySelector('img.full').naturalWidth === 2048")
    page.click("text=Show seed")
    expect(page.locator("#seed-value")).to_have_text(__import__("re").compile(r"^\d+$"))
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "detail-phone.png"), full_page=True)
    assert errors == [], errors


def test_on_a_phone_a_guesser_is_told_plainly_and_loses_nothing(
    browser_page, live_server, alice, settings
):
    from playwright.sync_api import expect

    settings.MJDASH_GUESS_LIMIT = 3
    page, errors = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server.url)
    guesses = [str(1732000000000000 + n) for n in range(8)]
    page.fill("textarea[name=ids]", "\n".join(guesses))
    page.click("button:has-text('Track')")
    expect(page.locator(".paste-result .error")).to_contain_text("Too many task IDs")
    expect(page.locator("textarea[name=ids]")).to_have_value("\n".join(guesses[3:]))
    expect(page.locator(".task")).to_have_count(3)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "throttled-phone.png"), full_page=True)
    assert errors == [], errors


def test_a_locked_out_login_says_when_to_come_back(browser_page, live_server, alice, settings):
    from playwright.sync_api import expect

    page, errors = browser_page
    for _ in range(settings.AXES_FAILURE_LIMIT):
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", "alice")
        page.fill("#id_password", "wrong-password")
        page.click("button[type=submit]")
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("main")).to_contain_text("Too many failed attempts")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "locked-out.png"))
    assert [e for e in errors if "429" not in e] == [], errors


def test_a_resized_paste_box_survives_a_swap_without_a_csp_violation(
    browser_page, live_server, alice, sandbox
):
    from playwright.sync_api import expect

    page, errors = browser_page
    log_in(page, live_server.url)
    page.evaluate("document.querySelector('textarea[name=ids]').style.height = '240px'")
    page.fill("textarea[name=ids]", sandbox.create_task()["id"])
    page.click("button:has-text('Track')")
    expect(page.locator(".paste-result")).to_contain_text("1 added")
    height = page.evaluate("document.querySelector('textarea[name=ids]').style.height")
    assert height == "240px"
    assert errors == [], errors


def test_no_page_scrolls_sideways_on_a_phone_whatever_the_tasks_state(
    browser_page, live_server, alice, sandbox
):
    """390 px wide: every page, and a task detail in every state the sandbox can produce."""
    page, errors = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    states = {
        "done, with individual images": {"image_urls_shape": "strings"},
        "done, objects": {"image_urls_shape": "objects", "prompt": "x" * 400},
        "failed": {"outcome": "FAILURE", "fail_reason": "上游任务超时（超过1小时）" * 5},
        "needs input": {"outcome": "MODAL"},
        "running": {"step_seconds": 30},
        "upscale": {"action": "UPSCALE"},
        "describe": {"action": "DESCRIBE"},
        "video": {"action": "VIDEO"},
    }
    ids = {name: sandbox.create_task(**fields)["id"] for name, fields in states.items()}
    ids["not found"] = "1732000000000999"
    log_in(page, live_server.url)
    page.fill("textarea[name=ids]", "\n".join(ids.values()))
    page.click("button:has-text('Track')")
    page.wait_for_selector(".paste-result")
    paths = ["/", "/gallery/", "/settings/", *(f"/tasks/{i}/" for i in ids.values())]
    wide = {}
    for path in paths:
        page.goto(live_server.url + path)
        page.wait_for_load_state("networkidle")
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > 390:
            wide[path] = width
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{live_server.url}/tasks/{ids['done, with individual images']}/")
    page.screenshot(path=str(ARTIFACTS / "detail-images-phone.png"), full_page=True)
    chip = page.locator(".mj-buttons li").first  # the gateway's actions: facts, not buttons
    style = chip.evaluate("e => [getComputedStyle(e).borderTopWidth, getComputedStyle(e).cursor]")
    assert style == ["0px", "default"], style
    assert wide == {}, wide
    assert errors == [], errors
