"""End to end in a real headless Chromium: log in, paste IDs, watch them finish, polling stops."""

from __future__ import annotations

import json
import os
import re
import shutil
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import PASSWORD, run_worker, track_new_task

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
SHOTS = Path("/tmp/shots")  # screenshots of the archive's pages, to look at by eye
# Problems the archive pages still have, found by eye in those screenshots, that templates/ and
# static/ have yet to fix: the grid's four quadrant thumbnails have no CSS, so each shows at its
# 512 px and sticks out of the task panel (and out of a phone's screen). Each is expected
# exactly where listed: once fixed, the test fails until its entry here is removed, so none
# can come back unnoticed.
KNOWN_PROBLEMS: dict[int, set[str]] = {1280: set(), 390: set()}
# Pictures and players wider than the section (card) that holds them.
STICKING_OUT = """() => [...document.querySelectorAll('main img, main video')].filter(e => {
    const box = (e.closest('section, .card') || document.querySelector('main'))
        .getBoundingClientRect();
    return e.getBoundingClientRect().right > box.right + 0.5;
}).map(e => e.getAttribute('src'))"""

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
    page.click("main button[type=submit]")
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
        page.click("main button[type=submit]")
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
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
    action = page.locator("button.mj-action").first  # the gateway's actions, each a button
    box = action.bounding_box()
    assert box["height"] >= 40 and box["width"] >= 40, box  # a finger can hit it
    assert wide == {}, wide
    assert errors == [], errors


def alice_tracks(alice, sandbox, *tasks: dict, archive: bool = True) -> list[str]:
    """Make finished tasks at the sandbox, track them as alice (through the test client, as a
    paste would), and let the worker archive them."""
    from django.test import Client

    from tracker.models import TrackedTask

    client = Client()
    client.force_login(alice)
    ids = [track_new_task(client, sandbox, **fields) for fields in tasks]
    if archive:
        run_worker()
        rows = TrackedTask.objects.filter(task_id__in=ids)
        assert all(r.archived_at for r in rows), [(r.task_id, r.archive_error) for r in rows]
    return ids


def loaded_sizes(page, selector: str) -> list[list[int]]:
    """Wait until every image `selector` matches has loaded (scrolled to, so a lazy one
    loads); their natural sizes."""
    for image in page.locator(selector).all():
        image.scroll_into_view_if_needed()
    page.wait_for_function(
        "s => [...document.querySelectorAll(s)].every(i => i.complete)", arg=selector
    )
    return page.eval_on_selector_all(
        selector, "all => all.map(i => [i.naturalWidth, i.naturalHeight])"
    )


def image_paths(urls: list[str]) -> list[str]:
    """The /mj/image/... requests among `urls`, as path?query."""
    parts = [urlsplit(u) for u in urls]
    return [
        p.path + (f"?{p.query}" if p.query else "")
        for p in parts
        if p.path.startswith("/mj/image/")
    ]


def download_zip(page, button: str) -> zipfile.ZipFile:
    with page.expect_download() as info:
        page.click(button)
    download = info.value
    assert download.suggested_filename.startswith("mjdash-"), download.suggested_filename
    return zipfile.ZipFile(download.path())


@pytest.mark.django_db(transaction=True)
def test_the_gallery_loads_only_thumbnails_and_zips_the_ticked_images(
    browser_page, live_server, alice, sandbox
):
    from playwright.sync_api import expect

    page, errors = browser_page
    page.set_viewport_size({"width": 1280, "height": 900})
    fox, owl, cat = alice_tracks(
        alice, sandbox,
        {"prompt": "first fox", "action": "IMAGINE"},
        {"prompt": "second owl", "action": "UPSCALE"},
        {"prompt": "third cat", "action": "IMAGINE"},
    )  # fmt: skip
    log_in(page, live_server.url)
    page.wait_for_load_state("networkidle")
    requests: list[str] = []
    content_types: dict[str, str] = {}
    page.on("request", lambda r: requests.append(r.url))
    page.on(
        "response",
        lambda r: content_types.__setitem__(urlsplit(r.url).path, r.headers.get("content-type")),
    )

    page.goto(f"{live_server.url}/gallery/")
    expect(page.locator(".gallery li")).to_have_count(3)
    sizes = loaded_sizes(page, ".gallery img")
    assert all(max(size) == 512 for size in sizes), sizes  # the archive's 512 px WebP
    page.wait_for_load_state("networkidle")
    thumbs = sorted(f"/mj/image/{i}/thumb" for i in (fox, owl, cat))
    assert sorted(image_paths(requests)) == thumbs  # no original, no ?pending placeholder
    assert {content_types[t] for t in thumbs} == {"image/webp"}

    # Tick two, and the "Selected" ZIP holds those two and their metadata, nothing else.
    page.check(f"#zip-form ~ .gallery input[name=ids][value='{fox}']")
    page.check(f"#zip-form ~ .gallery input[name=ids][value='{cat}']")
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "gallery-ticked-1280.png"), full_page=True)
    selected = download_zip(page, "#zip-selected")
    assert selected.testzip() is None
    assert set(selected.namelist()) == {
        f"first-fox_{fox}.png",
        f"third-cat_{cat}.png",
        "metadata.json",
        "metadata.csv",
    }
    assert selected.read(f"first-fox_{fox}.png").startswith(b"\x89PNG")
    assert sorted(r["id"] for r in json.loads(selected.read("metadata.json"))) == sorted([fox, cat])

    # "All" holds every image, whatever is ticked.
    everything = download_zip(page, "#zip-form button[value=all]")
    pngs = sorted(n for n in everything.namelist() if n.endswith(".png"))
    assert pngs == sorted([f"first-fox_{fox}.png", f"second-owl_{owl}.png", f"third-cat_{cat}.png"])
    records = json.loads(everything.read("metadata.json"))
    assert sorted(r["id"] for r in records) == sorted([fox, owl, cat])

    page.reload()
    expect(page.locator("#zip-form button[value=new]")).to_be_disabled()
    expect(page.locator("#zip-form button[value=new]")).to_have_text("Not downloaded yet (0)")

    # Split grids: a grid becomes its four images, an upscale stays one.
    page.check("#zip-form input[name=quadrants]")
    split = download_zip(page, "#zip-form button[value=all]")
    names = split.namelist()
    assert [n for n in names if fox in n] == [f"first-fox_{fox}_{n}.png" for n in (1, 2, 3, 4)]
    assert f"second-owl_{owl}.png" in names
    # Downloading never loaded an original into the page.
    assert all(p.endswith("/thumb") for p in image_paths(requests)), image_paths(requests)
    assert errors == [], errors


@pytest.mark.django_db(transaction=True)
def test_a_gallery_tile_waiting_for_the_archive_turns_into_its_thumbnail(
    browser_page, live_server, alice, sandbox
):
    from playwright.sync_api import expect

    page, errors = browser_page
    page.set_viewport_size({"width": 1280, "height": 900})
    (task_id,) = alice_tracks(alice, sandbox, {"prompt": "a late fox"}, archive=False)
    log_in(page, live_server.url)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{live_server.url}/gallery/")
    image = page.locator(f"#thumb-{task_id}")
    expect(image).to_have_attribute("src", re.compile(r"/thumb\?pending=\d+$"))
    assert loaded_sizes(page, f"#thumb-{task_id}") == [[320, 320]]  # the "Archiving…" SVG
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "gallery-archiving-1280.png"), full_page=True)

    run_worker()
    expect(image).to_have_attribute("src", f"/mj/image/{task_id}/thumb", timeout=10_000)
    assert max(loaded_sizes(page, f"#thumb-{task_id}")[0]) == 512
    page.screenshot(path=str(SHOTS / "gallery-archived-1280.png"), full_page=True)
    assert all("/thumb" in p for p in image_paths(requests)), image_paths(requests)
    # The tile stops asking once it has its thumbnail.
    page.wait_for_timeout(500)
    polls = f"/tasks/{task_id}/thumb/"
    asked = len([u for u in requests if polls in u])
    assert asked >= 1, "the tile never asked again"
    page.wait_for_timeout(4000)  # more than one 3 s poll
    assert len([u for u in requests if polls in u]) == asked, "the tile kept polling"
    assert errors == [], errors


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width", [1280, 390])
def test_the_archive_pages_on_a_desktop_and_a_phone(
    browser_page, live_server, alice, sandbox, width
):
    """The gallery, an archived grid, an archived video and the archive's card in Settings:
    no console error or CSP violation on any, no sideways scroll, and a screenshot of each."""
    from playwright.sync_api import expect

    page, errors = browser_page
    page.set_viewport_size({"width": width, "height": 900 if width > 390 else 844})
    grid, upscale, video = alice_tracks(
        alice, sandbox,
        {"prompt": "a red fox in the snow, cinematic light, --ar 1:1", "action": "IMAGINE"},
        {"prompt": "an owl on a branch at dusk", "action": "UPSCALE"},
        {"prompt": "waves rolling onto a beach", "action": "VIDEO"},
    )  # fmt: skip
    log_in(page, live_server.url)
    SHOTS.mkdir(exist_ok=True)
    problems: dict[str, object] = {}

    def visit(path: str) -> None:
        page.goto(live_server.url + path)
        page.wait_for_load_state("networkidle")

    def settle(name: str) -> None:
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
        scroll = page.evaluate("document.documentElement.scrollWidth")
        if scroll > width:
            problems[f"{name}: scrolls sideways"] = scroll
        if sticking_out := page.evaluate(STICKING_OUT):
            problems[f"{name}: media sticks out of its panel"] = sticking_out
        if errors:
            problems[f"{name}: console"] = list(errors)
            errors.clear()

    visit("/gallery/")
    expect(page.locator(".gallery li")).to_have_count(3)
    sizes = loaded_sizes(page, ".gallery img")
    assert all(max(size) == 512 for size in sizes), sizes
    settle("gallery")

    visit(f"/tasks/{grid}/")
    expect(page.locator("h2", has_text="The four images")).to_be_visible()
    expect(page.locator(".quadrants img")).to_have_count(4)
    assert all(max(size) == 512 for size in loaded_sizes(page, ".quadrants img"))
    assert loaded_sizes(page, "img.full") == [[2048, 2048]]
    expect(page.locator(".archive-state.ok")).to_contain_text("Kept in your archive")
    settle("detail-grid")

    visit(f"/tasks/{video}/")
    # The sandbox's VIDEO task has a still (imageUrl) and a clip (videoUrl): the page plays
    # the clip, with its first frame from the archive as the poster.
    player = page.locator("video").first
    expect(player).to_be_visible()
    expect(player).to_have_attribute("poster", re.compile(rf"^/mj/image/{video}(/\d+)?/thumb$"))
    player.scroll_into_view_if_needed()
    player.evaluate(
        "v => v.readyState >= 1 || v.error || new Promise(done => {"
        " v.addEventListener('loadedmetadata', done); v.addEventListener('error', done); })"
    )
    state = player.evaluate("v => ({error: v.error && v.error.code, width: v.videoWidth})")
    assert state["error"] is None and state["width"] > 0, state
    expect(page.locator(".archive-state.ok")).to_contain_text("Kept in your archive")
    settle("detail-video")  # before it plays: the poster shows
    played = player.evaluate(
        "v => { v.muted = true; return v.play().then(() => new Promise(done =>"
        " setTimeout(() => done(v.currentTime), 500))); }"
    )
    assert played > 0, "the video did not play"
    player.evaluate("v => v.pause()")
    settle("detail-video-played")

    visit("/settings/")
    card = page.locator("section.card", has_text="Your image archive")
    expect(card).to_contain_text("3 tasks kept")
    settle("settings")

    unexpected = {k: v for k, v in problems.items() if k not in KNOWN_PROBLEMS[width]}
    assert unexpected == {}, unexpected
    fixed = KNOWN_PROBLEMS[width] - problems.keys()
    assert not fixed, f"fixed now: remove {fixed} from KNOWN_PROBLEMS"
    if problems:
        pytest.xfail(f"known problems, still to fix in templates/static: {problems}")
