"""The gallery in a real headless Chromium: the lightbox and its keys, a Shift+click range
into a ZIP, the search and help shortcuts, and how it all looks on a desktop and a phone."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.test_browser import SHOTS, alice_tracks, browser_page, download_zip, log_in
from tests.test_browser import pytestmark as browser_marks
from tracker.models import TrackedTask

__all__ = ["browser_page"]  # the fixture, shared with test_browser
pytestmark = [*browser_marks, pytest.mark.django_db(transaction=True)]
OPEN = "() => document.getElementById('lightbox').open"  # a function: CSP forbids eval
SHUT = "() => !document.getElementById('lightbox').open"


def newest_first(ids: list[str]) -> list[str]:
    """Give the images distinct finish times: the first is the newest."""
    now = timezone.now()
    for age, task_id in enumerate(ids):
        TrackedTask.objects.filter(task_id=task_id).update(finished_at=now - timedelta(minutes=age))
    return ids


def shown(page) -> str:
    return page.locator("#lightbox-body .lb").get_attribute("data-task")


def no_sideways_scroll(page) -> None:
    width = page.evaluate("window.innerWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_the_lightbox_steps_across_pages_with_the_keys_and_closes_back_to_its_tile(
    browser_page, live_server, alice, sandbox, monkeypatch
):
    from playwright.sync_api import expect

    monkeypatch.setattr("tracker.views.gallery.PAGE_SIZE", 2)
    page, errors = browser_page
    page.set_viewport_size({"width": 1280, "height": 800})
    ids = newest_first(
        alice_tracks(alice, sandbox, {"prompt": "first"}, {"prompt": "second"}, {"prompt": "third"})
    )
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/gallery/")
    expect(page.locator(".gallery li")).to_have_count(2)  # page 1 of 2

    page.click(f"li[data-task='{ids[0]}'] a[data-lightbox]")
    page.wait_for_function(OPEN)
    assert shown(page) == ids[0]
    expect(page).to_have_url(re.compile(rf"/gallery/{ids[0]}/view/"))
    expect(page.locator("#lightbox .lb-pos")).to_have_text("1 of 3")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#lightbox .lb-pos")).to_have_text("2 of 3")
    page.keyboard.press("ArrowRight")  # past the last image of page 1
    expect(page.locator("#lightbox .lb-pos")).to_have_text("3 of 3")
    assert shown(page) == ids[2]
    expect(page.locator("#lightbox [data-lightbox-next]")).to_have_count(0)
    page.keyboard.press("ArrowRight")  # the end: nothing happens
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#lightbox .lb-pos")).to_have_text("2 of 3")
    expect(page).to_have_url(re.compile(rf"/gallery/{ids[1]}/view/"))

    # F favourites, and the tile behind shows it too.
    page.keyboard.press("f")
    expect(page.locator("#lightbox [data-lightbox-fav]")).to_have_attribute("aria-pressed", "true")
    expect(page.locator(f"#marks-{ids[1]} .mark-fav")).to_have_attribute("aria-pressed", "true")
    assert TrackedTask.objects.get(task_id=ids[1]).favourite

    # Focus stays inside while it is open.
    for _ in range(12):
        page.keyboard.press("Tab")
        assert page.evaluate("document.getElementById('lightbox').contains(document.activeElement)")

    # Esc closes it, the address is the gallery's again, and focus is back on the tile.
    page.keyboard.press("Escape")
    page.wait_for_function(SHUT)
    expect(page).to_have_url(f"{live_server.url}/gallery/")
    focused = page.evaluate("document.activeElement.closest('li').dataset.task")
    assert focused == ids[1]

    # Back closes it too, and a second Back leaves the gallery as usual.
    page.click(f"li[data-task='{ids[0]}'] a[data-lightbox]")
    page.wait_for_function(OPEN)
    page.go_back()
    page.wait_for_function(SHUT)
    expect(page).to_have_url(f"{live_server.url}/gallery/")
    assert page.evaluate("document.activeElement.closest('li').dataset.task") == ids[0]
    assert errors == [], errors


def test_shift_click_selects_a_range_and_the_zip_holds_exactly_it(
    browser_page, live_server, alice, sandbox
):
    from playwright.sync_api import expect

    page, errors = browser_page
    page.set_viewport_size({"width": 1280, "height": 800})
    prompts = ["alpha", "bravo", "charlie", "delta", "echo"]
    ids = newest_first(alice_tracks(alice, sandbox, *({"prompt": p} for p in prompts)))
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/gallery/")
    status = page.locator("[data-selection-status]")
    expect(page.locator("#zip-selected")).to_be_disabled()

    page.click(f".gallery input[value='{ids[1]}']")
    page.click(f".gallery input[value='{ids[3]}']", modifiers=["Shift"])
    expect(status).to_have_text("3 selected")
    expect(page.locator("#zip-selected")).to_have_text("Selected (3)")
    ticked = page.eval_on_selector_all(
        ".gallery input[name=ids]:checked", "l => l.map(i => i.value)"
    )
    assert ticked == ids[1:4]
    selected = download_zip(page, "#zip-selected")
    assert sorted(n for n in selected.namelist() if n.endswith(".png")) == sorted(
        f"{prompts[i]}_{ids[i]}.png" for i in (1, 2, 3)
    )
    assert sorted(r["id"] for r in json.loads(selected.read("metadata.json"))) == sorted(ids[1:4])

    # Shift+click back down un-ticks a range the same way.
    page.click(f".gallery input[value='{ids[2]}']")
    page.click(f".gallery input[value='{ids[3]}']", modifiers=["Shift"])
    expect(status).to_have_text("1 selected")

    # Every image matching the filter, then a bulk action with its message.
    page.check("[data-select-all]")
    expect(status).to_have_text("All 5 matching images selected")
    page.click("#zip-form button[value=favourite]")
    expect(page.locator(".message.success")).to_have_text("5 images added to favourites.")
    assert TrackedTask.objects.filter(favourite=True).count() == 5
    assert errors == [], errors


def test_slash_searches_and_question_mark_shows_the_shortcuts(
    browser_page, live_server, alice, sandbox
):
    from playwright.sync_api import expect

    page, errors = browser_page
    alice_tracks(alice, sandbox, {"prompt": "a quiet lake"})
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/gallery/")
    page.keyboard.press("/")
    search = page.locator("form.filters input[name=q]")
    expect(search).to_be_focused()
    page.keyboard.type("lake?")  # typing: neither key is a shortcut here
    expect(search).to_have_value("lake?")
    expect(page.locator("#shortcuts")).not_to_be_visible()

    page.locator("h1").click()
    page.keyboard.press("?")
    expect(page.locator("#shortcuts")).to_be_visible()
    expect(page.locator("#shortcuts")).to_contain_text("Keyboard shortcuts")
    page.keyboard.press("Escape")
    expect(page.locator("#shortcuts")).not_to_be_visible()

    # The dashboard's search box answers to / as well.
    page.goto(f"{live_server.url}/")
    page.keyboard.press("/")
    expect(page.locator("form.filters input[name=q]")).to_be_focused()
    assert errors == [], errors


@pytest.mark.parametrize(("name", "width", "height"), [("desktop", 1280, 800), ("phone", 390, 844)])
def test_the_gallery_and_the_lightbox_on_a_desktop_and_a_phone(
    browser_page, live_server, alice, sandbox, name, width, height
):
    """Screenshots to look at, no sideways scroll, the clip playing inside the lightbox, a
    swipe to step, and grids shown as four tiles kept across a reload."""
    from playwright.sync_api import expect

    page, errors = browser_page
    page.set_viewport_size({"width": width, "height": height})
    ids = newest_first(
        alice_tracks(
            alice, sandbox,
            {"prompt": "a red fox in the snow, cinematic light, " * 3, "action": "IMAGINE"},
            {"prompt": "waves rolling onto a beach", "action": "VIDEO"},
            {"prompt": "一只在雪地里的狐狸 🦊", "action": "UPSCALE"},
            {"prompt": "an owl on a branch at dusk", "action": "IMAGINE"},
        )
    )  # fmt: skip
    TrackedTask.objects.filter(task_id__in=ids[::2]).update(favourite=True)
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/gallery/")
    page.wait_for_load_state("networkidle")
    columns = page.evaluate(
        "getComputedStyle(document.querySelector('.gallery')).gridTemplateColumns.split(' ').length"
    )
    assert columns >= 2, columns
    small = page.eval_on_selector_all(
        ".gallery .pick, .gallery .download, .gallery .mark-fav, .lb-nav",
        "l => l.filter(e => e.getBoundingClientRect().width < 40).length",
    )
    assert small == 0, "tap targets under 40 px"
    no_sideways_scroll(page)
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"gallery-{name}.png"), full_page=True)

    # The clip plays inside the lightbox.
    page.click(f"li[data-task='{ids[1]}'] a[data-lightbox]")
    page.wait_for_function(OPEN)
    player = page.locator("#lightbox video")
    expect(player).to_be_visible()
    played = player.evaluate(
        "v => { v.muted = true; return v.play().then(() => new Promise(done =>"
        " setTimeout(() => done(v.currentTime), 400))); }"
    )
    assert played > 0
    player.evaluate("v => v.pause()")

    # A swipe to the left steps to the next image.
    swipe = """([from, to]) => { const box = document.getElementById('lightbox');
      const touch = x => new Touch({identifier: 1, target: box, clientX: x, clientY: 300});
      const fire = (type, x) => box.dispatchEvent(
        new TouchEvent(type, {changedTouches: [touch(x)], bubbles: true}));
      fire('touchstart', from); fire('touchend', to); }"""
    page.evaluate(swipe, [300, 100])
    expect(page.locator("#lightbox .lb-pos")).to_have_text("3 of 4")
    page.wait_for_function("() => document.querySelector('#lightbox .lb-media img')?.complete")
    page.click("#lightbox #seed a")  # the seed, on demand
    expect(page.locator("#lightbox #seed-value")).to_have_text(re.compile(r"^\d+$"))
    page.screenshot(path=str(SHOTS / f"lightbox-{name}.png"))
    overflow = page.evaluate(
        "[...document.querySelectorAll('#lightbox .lb *')].filter(e =>"
        " e.getBoundingClientRect().right > window.innerWidth + 0.5).map(e => e.className)"
    )
    assert overflow == [], overflow
    page.keyboard.press("Escape")
    page.wait_for_function(SHUT)

    # Reloaded, or without JavaScript, the lightbox is a page of its own; ← still steps.
    page.goto(f"{live_server.url}/gallery/{ids[3]}/view/")
    expect(page.locator(".lightbox-page .lb-pos")).to_have_text("4 of 4")
    page.keyboard.press("ArrowLeft")
    expect(page.locator(".lightbox-page .lb-pos")).to_have_text("3 of 4")
    expect(page).to_have_url(re.compile(rf"/gallery/{ids[2]}/view/$"))
    no_sideways_scroll(page)
    page.screenshot(path=str(SHOTS / f"lightbox-page-{name}.png"), full_page=True)
    page.goto(f"{live_server.url}/gallery/")

    # Grids as four tiles: remembered across a reload.
    page.click(".layout-toggle button[value=split]")
    expect(page.locator(f"li[data-task='{ids[0]}']")).to_have_count(4)
    page.reload()
    expect(page.locator(f"li[data-task='{ids[0]}']")).to_have_count(4)
    expect(page.locator(".layout-toggle button[value=split]")).to_have_attribute(
        "aria-pressed", "true"
    )
    page.wait_for_load_state("networkidle")
    no_sideways_scroll(page)
    page.screenshot(path=str(SHOTS / f"gallery-split-{name}.png"), full_page=True)

    # Dark, as the system asks, the message banners included.
    page.emulate_media(color_scheme="dark")
    page.check("[data-select-all]")
    page.click("#zip-form button[value=favourite]")
    expect(page.locator(".message.success")).to_have_text("4 images added to favourites.")
    page.screenshot(path=str(SHOTS / f"gallery-dark-{name}.png"), full_page=True)
    page.emulate_media(color_scheme="light")

    # The task list is dense enough to scan on a phone: a row is a thumbnail's height or so.
    page.goto(f"{live_server.url}/")
    rows = page.eval_on_selector_all(".task", "l => l.map(r => r.getBoundingClientRect().height)")
    assert len(rows) == 4, rows
    if width < 700:
        page.screenshot(path=str(SHOTS / f"dashboard-{name}.png"), full_page=True)
        assert max(rows) <= 100, rows
    no_sideways_scroll(page)
    page.screenshot(path=str(SHOTS / f"dashboard-{name}.png"), full_page=True)
    assert errors == [], errors
