"""The web UI as a person uses it, in headless Chromium against the real server."""

from __future__ import annotations

import re
from datetime import datetime

import pyotp
import pytest

from tests.browser.conftest import DESKTOP, PHONE, Browse
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

OWNER_EMAIL = "owner@example.com"
OWNER_NAME = "Olive Owner"


def create_owner(browse: Browse, confirm: str = PASSWORD) -> None:
    """First run: the setup form creates the owner, who lands on the first-run wizard (or, with a
    `confirm` that differs, stays on the form)."""
    page = browse.page
    browse.goto("/")
    page.wait_for_url("**/setup")
    page.fill("input[name=name]", OWNER_NAME)
    page.fill("input[name=email]", OWNER_EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=password_confirm]", confirm)
    with page.expect_navigation():
        page.click("button[type=submit]")


def set_up_owner(browse: Browse) -> None:
    """First run, through the setup form and past the wizard; the owner ends up signed in on the home page."""
    page = browse.page
    create_owner(browse)
    page.locator("#skip-setup").wait_for()  # the first-run wizard; skipped here
    assert page.url.endswith("/welcome/welcome")
    with page.expect_navigation():
        page.click("#skip-setup")
    assert page.url == browse.base_url + "/"


def sign_out(browse: Browse) -> None:
    page = browse.page
    if page.is_hidden("#logout"):
        page.click("#user-menu summary")
    with page.expect_navigation():
        page.click("#logout")
    assert page.url.endswith("/login")


def sign_in(browse: Browse, password: str = PASSWORD) -> None:
    page = browse.page
    page.fill("input[name=email]", OWNER_EMAIL)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("button[type=submit]")


def has_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth > window.innerWidth")


def test_owner_sets_up_signs_in_enrols_two_factor_and_signs_in_with_a_code(browse):
    page = browse.page
    browse.goto("/")
    page.wait_for_url("**/setup")
    assert "SigDesk" in page.title()
    set_up_owner(browse)
    assert page.inner_text("h1") == f"Hello, {OWNER_NAME}"
    browse.screenshot("home")

    sign_out(browse)
    browse.screenshot("login")
    sign_in(browse)
    assert page.url == browse.base_url + "/"

    page.click("#user-menu summary")
    assert page.is_visible(f"#user-menu >> text={OWNER_NAME}")
    page.click("#user-menu >> text=Your account")
    page.wait_for_url("**/account/")
    with page.expect_navigation():
        page.click("text=Turn on two-factor authentication")
    assert page.url.endswith("/account/two-factor")
    assert page.is_visible(".qr svg")
    browse.screenshot("two-factor")
    totp = pyotp.TOTP(page.inner_text("#totp-secret").strip())
    page.fill("input[name=code]", totp.now())
    with page.expect_navigation():
        page.click("button:has-text('Turn on')")
    codes = page.locator("#recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    assert all(re.fullmatch(r"[0-9A-F]{5}-[0-9A-F]{5}", code) for code in codes)
    browse.screenshot("recovery-codes")

    sign_out(browse)
    sign_in(browse)
    assert page.url.startswith(browse.base_url + "/login/verify")
    # the step used for enrolment is spent; the next one is within SigDesk's one-step drift
    page.fill("input[name=code]", totp.generate_otp(totp.timecode(datetime.now()) + 1))
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url == browse.base_url + "/"
    assert page.inner_text("h1") == f"Hello, {OWNER_NAME}"
    assert not page.is_visible("text=turn on two-factor authentication")
    browse.watch.assert_clean()


def test_a_wrong_password_keeps_the_person_on_the_login_page_with_a_message(browse):
    page = browse.page
    set_up_owner(browse)
    sign_out(browse)
    sign_in(browse, password="not the password")
    assert page.url.endswith("/login")
    assert "Wrong email or password" in page.inner_text("[role=alert]")
    assert page.input_value("input[name=email]") == OWNER_EMAIL


def test_theme_toggle_switches_to_dark_and_survives_a_reload(browse):
    page = browse.page
    set_up_owner(browse)
    html = page.locator("html")
    assert html.get_attribute("data-theme") == "light"
    page.click("#theme-toggle")
    assert html.get_attribute("data-theme") == "dark"
    assert page.evaluate("localStorage.getItem('sigdesk-theme')") == "dark"
    page.reload()
    assert html.get_attribute("data-theme") == "dark"
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(17, 22, 28)"
    browse.goto("/admin/team")
    assert html.get_attribute("data-theme") == "dark"
    browse.screenshot("dark-team")
    browse.goto("/")
    browse.screenshot("dark-home")
    page.click("#theme-toggle")
    page.reload()
    assert html.get_attribute("data-theme") == "light"
    browse.watch.assert_clean()


def test_desktop_width_shows_the_full_navigation(browse):
    page = browse.page
    set_up_owner(browse)
    browse.goto("/admin/team")
    assert page.viewport_size == DESKTOP
    assert page.is_hidden("label.nav-toggle-label")
    for link in ("Inbox", "Settings"):
        assert page.is_visible(f"nav.nav >> text={link}")
    for link in ("Team", "Audit log", "General", "Backups"):
        assert page.is_visible(f"#settings-nav >> text={link}")
    assert page.is_visible(f"#user-menu >> text={OWNER_NAME}")
    page.fill("input[name=name]", "Ada Agent")
    page.fill("input[name=email]", "ada@example.com")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("button:has-text('Add to team')")
    assert page.locator(f"#team tr[data-email='{OWNER_EMAIL}']").count() == 1
    assert page.is_visible("#team tr[data-email='ada@example.com'] >> text=Deactivate")
    assert not has_horizontal_scroll(page)
    browse.screenshot("team")
    for path in ("/admin/audit", "/admin/settings", "/account/"):
        browse.goto(path)
        assert not has_horizontal_scroll(page), path
    browse.watch.assert_clean()


def test_phone_width_collapses_the_navigation_and_never_scrolls_sideways(browse):
    page = browse.page
    page.set_viewport_size(PHONE)
    set_up_owner(browse)
    assert page.is_visible("label.nav-toggle-label")
    assert page.inner_text("label.nav-toggle-label") == "☰"
    assert page.is_hidden("nav.nav")
    assert not has_horizontal_scroll(page)
    browse.screenshot("phone-home")
    page.click("label.nav-toggle-label")
    assert page.is_visible("nav.nav >> text=Settings")
    browse.screenshot("phone-menu-open")
    for path in ("/admin/audit", "/admin/settings", "/account/", "/account/two-factor", "/admin/team"):
        browse.goto(path)
        assert not has_horizontal_scroll(page), path
    browse.screenshot("phone-team")
    sign_out(browse)
    assert not has_horizontal_scroll(page)
    assert page.is_visible("input[name=email]") and page.is_visible("button[type=submit]")
    browse.screenshot("phone-login")
    browse.watch.assert_clean()


def test_pages_only_talk_to_loopback_and_the_csp_lets_them_work(browse):
    page = browse.page
    set_up_owner(browse)
    for path in (
        "/",
        "/account/",
        "/account/two-factor",
        "/admin/team",
        "/admin/audit",
        "/admin/settings",
        "/no-such-page",
    ):
        browse.goto(path)
        assert page.evaluate("getComputedStyle(document.body).display") == "flex", f"app.css not applied on {path}"
        page.click("#theme-toggle")
        assert page.locator("html").get_attribute("data-theme") == "dark", f"theme.js did not run on {path}"
        page.evaluate("localStorage.clear()")
    csp = page.request.get(browse.base_url + "/login").headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert all(url.startswith(browse.base_url) for url in browse.watch.requests)
    # /no-such-page is a 404 the browser logs as a console error; everything else must be clean
    browse.watch.errors = [error for error in browse.watch.errors if "404" not in error]
    browse.watch.assert_clean()
