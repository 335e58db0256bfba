"""A Chinese browser in a real Chromium: Chinese pages, the header's switch to English that
stays, and the switcher on a phone."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import test_browser
from tests.test_browser import CHROMIUM, log_in

browser_page = test_browser.browser_page  # the fixture, with its console-error and CSP guard

SHOTS = Path("/tmp/shots")
CHINESE = {"Accept-Language": "zh-CN,zh;q=0.9"}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed"),
]


def test_a_chinese_browser_reads_chinese_and_switches_to_english_for_good(
    browser_page, live_server, alice
):
    from playwright.sync_api import expect

    page, errors = browser_page
    page.set_extra_http_headers(CHINESE)
    page.goto(f"{live_server.url}/accounts/login/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.locator("h1")).to_have_text("登录 mjdash")
    expect(page.locator("label[for=id_password]")).to_have_text("密码")

    page.select_option("#language-choice", "en")
    page.click(".language button")
    page.wait_for_url(f"{live_server.url}/accounts/login/")
    expect(page.locator("h1")).to_have_text("Log in to mjdash")
    log_in(page, live_server.url)  # the next pages, still asked for in Chinese, stay English
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator(".topbar nav")).to_contain_text("Settings")
    page.goto(f"{live_server.url}/settings/")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#language-choice")).to_have_value("en")
    assert errors == [], errors


def test_on_a_phone_the_switcher_fits_in_the_header(browser_page, live_server, alice):
    from playwright.sync_api import expect

    page, errors = browser_page
    page.set_extra_http_headers(CHINESE)
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server.url)
    expect(page.locator(".topbar nav")).to_contain_text("设置")
    switcher = page.locator("form.language").bounding_box()
    header = page.locator("header.topbar").bounding_box()
    assert switcher["x"] >= 0 and switcher["x"] + switcher["width"] <= 390, switcher
    assert switcher["y"] + switcher["height"] <= header["y"] + header["height"], (switcher, header)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "lang-zh-phone.png"))
    page.set_viewport_size({"width": 1200, "height": 700})
    page.screenshot(path=str(SHOTS / "lang-zh-desktop.png"))
    assert errors == [], errors
