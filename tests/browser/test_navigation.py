"""Where every page lives, as a person finds it: the top bar's sections, the Settings area's menu, the
inbox's side panel at any width, banners that never squeeze the inbox, coloured flashes and the
confirmation dialog. Screenshots at each size go to test-artifacts/."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from sigdesk import navigation
from sigdesk.settings import services as settings
from tests.browser.conftest import PHONE, Browse, Watch, _is_loopback
from tests.browser.test_auth_flow import OWNER_EMAIL, set_up_owner
from tests.conftest import PASSWORD
from tests.inbox.helpers import customer_writes

pytestmark = pytest.mark.browser

SIZES = {"desktop": {"width": 1280, "height": 800}, "laptop": {"width": 1024, "height": 768}, "phone": PHONE}


def has_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth > window.innerWidth")


def click_section(browse: Browse, key: str) -> None:
    page = browse.page
    if page.is_hidden(f"#nav-{key}"):
        page.click("label.nav-toggle-label")
    with page.expect_navigation():
        page.click(f"#nav-{key}")
    expect(page.locator(f"#nav-{key}")).to_have_attribute("aria-current", "page")


def open_setting(browse: Browse, entry: navigation.Entry) -> None:
    page = browse.page
    if page.is_visible("#settings-nav"):
        with page.expect_navigation():
            page.click(f"#settings-nav a[data-setting='{entry.key}']")
        expect(page.locator(f"#settings-nav a[data-setting='{entry.key}']")).to_have_attribute("aria-current", "page")
    else:
        with page.expect_navigation():
            page.select_option("#settings-jump", label=entry.label)
        assert page.eval_on_selector("#settings-jump", "s => s.selectedOptions[0].dataset.setting") == entry.key


@pytest.mark.parametrize("size", SIZES)
def test_every_section_and_every_settings_page_is_reachable_by_clicking(browse: Browse, size: str):
    page = browse.page
    page.set_viewport_size(SIZES[size])
    set_up_owner(browse)
    sections = [section.key for section in navigation.sections_for("owner")]
    assert sections[0] == "inbox" and sections[-1] == "settings"
    for key in sections:
        click_section(browse, key)
        assert not has_horizontal_scroll(page), key
    browse.screenshot(f"nav-{size}-settings-landing")
    entries = navigation.settings_for("owner")
    assert {entry.key for entry in entries} >= {
        "general",
        "team",
        "inbox",
        "access",
        "whatsapp",
        "inbound",
        "webhooks",
        "templates",
        "exports",
        "backups",
        "audit",
    }
    for entry in entries:
        open_setting(browse, entry)
        assert page.locator(".settings-main h1").first.is_visible(), entry.key
        assert not has_horizontal_scroll(page), entry.key
        if entry.key in ("team", "audit", "general", "backups"):
            browse.screenshot(f"nav-{size}-{entry.key}")
    if size == "phone":
        page.click("label.nav-toggle-label")
        browse.screenshot("nav-phone-menu-open")
        page.click("label.nav-toggle-label")
    page.click("#user-menu summary")
    with page.expect_navigation():
        page.click("#user-menu >> text=Your account")
    assert page.url.endswith("/account/")
    browse.watch.assert_clean()


def test_agents_see_only_the_inbox_and_no_settings(browse: Browse, auth, app):
    page = browse.page
    set_up_owner(browse)
    agent = auth.create_user("agent", "ada@example.com", "Ada Agent")
    page.click("#user-menu summary")
    with page.expect_navigation():
        page.click("#logout")
    page.fill("input[name=email]", agent.email)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.locator("nav.nav a").all_inner_texts() == ["Inbox", "Contacts", "Reorders", "Analytics"]  # no Settings
    assert navigation.settings_for("agent") == []
    browse.watch.assert_clean()


@pytest.mark.parametrize("size", ["laptop", "phone"])
def test_the_inbox_side_panel_is_reachable_at_any_width(browse: Browse, app, size: str):
    page = browse.page
    page.set_viewport_size(SIZES[size])
    set_up_owner(browse)
    database = app.extensions["sigdesk"].database
    conversation = customer_writes(database, "4915112345678", "Is the shop open?", name="Carla Customer")
    browse.goto("/")
    page.click(f"#conv-{conversation}")
    expect(page.locator(".thread")).to_be_visible()
    panel = page.locator("#panel")
    expect(panel.locator(".panel")).to_be_attached()
    assert not panel.is_visible() or panel.bounding_box()["x"] >= SIZES[size]["width"] - 1
    page.click("[data-panel-toggle]")
    expect(panel.locator("#assign-select")).to_be_in_viewport()
    expect(panel.locator("text=Carla Customer")).to_be_visible()
    page.wait_for_timeout(300)  # the drawer's slide-in
    browse.screenshot(f"inbox-{size}-details-open")
    page.select_option("#assign-select", label="Olive Owner (me)")
    page.click("[data-panel-close]")
    expect(panel.locator("#assign-select")).not_to_be_in_viewport()
    assert not has_horizontal_scroll(page)
    browse.watch.assert_clean()


def assert_inbox_below(page, banner: dict, viewport: dict, size: str) -> dict:
    """A banner spans the window above the inbox, which keeps the full width: at 1280 px the thread keeps its
    room, at 390 px the conversation list fills the screen below the banner."""
    assert banner["width"] > viewport["width"] - 60, banner  # across the window, not a narrow column
    inbox = page.locator(".inbox").bounding_box()
    assert inbox["y"] >= banner["y"] + banner["height"], (inbox, banner)  # below it, not beside it
    assert inbox["x"] <= 1 and inbox["width"] >= viewport["width"] - 1, inbox
    if size == "desktop":
        thread = page.locator("#thread").bounding_box()
        assert thread["width"] > 600 and thread["height"] > 500, thread
    else:
        listing = page.locator(".inbox-list").bounding_box()
        assert listing["width"] > 350 and listing["height"] > 500, listing
        assert page.locator("#search-input").is_visible()
    assert not has_horizontal_scroll(page)
    return inbox


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_banners_never_squeeze_the_inbox_after_the_first_run(browse: Browse, size: str):
    """The flash right after setup sits above the inbox across the window, never as a column beside it: at
    1280 px the thread keeps its width, at 390 px the conversation list fills the screen below the flash."""
    page = browse.page
    viewport = SIZES[size]
    page.set_viewport_size(viewport)
    set_up_owner(browse)  # skipping the wizard lands on the inbox with a flash
    banner = page.locator("#banners .flash")
    expect(banner).to_be_visible()
    flash = banner.bounding_box()
    assert flash["height"] < (80 if size == "desktop" else 160), flash
    inbox = assert_inbox_below(page, flash, viewport, size)
    assert inbox["y"] + inbox["height"] >= viewport["height"] - 1, inbox  # down to the bottom of the window
    browse.screenshot(f"inbox-{size}-after-setup-banner")
    browse.watch.assert_clean()


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_banners_never_squeeze_the_inbox_while_setup_is_unfinished(browse: Browse, size: str):
    """The "setup is not finished" banner sits above the inbox like any flash: at 1280 px the thread keeps its
    width, at 390 px the conversation list fills the screen below it."""
    page = browse.page
    viewport = SIZES[size]
    page.set_viewport_size(viewport)
    browse.goto("/")
    page.wait_for_url("**/setup")
    page.fill("input[name=name]", "Olive Owner")
    page.fill("input[name=email]", OWNER_EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=password_confirm]", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    page.locator("#skip-setup").wait_for()
    browse.goto("/")
    resume = page.locator("#onboarding-resume")
    expect(resume).to_be_visible()
    assert_inbox_below(page, resume.bounding_box(), viewport, size)
    browse.screenshot(f"inbox-{size}-setup-unfinished")
    browse.watch.assert_clean()


def add_member(page, email: str) -> None:
    page.fill("#add-member input[name=name]", "Ada Agent")
    page.fill("#add-member input[name=email]", email)
    page.fill("#add-member input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("button:has-text('Add to team')")


def flash_background(page) -> str:
    return page.evaluate("getComputedStyle(document.querySelector('#banners .flash')).backgroundColor")


def test_flash_colours_follow_success_and_error(browse: Browse):
    page = browse.page
    set_up_owner(browse)
    browse.goto("/admin/team")
    add_member(page, "ada@example.com")
    success = page.locator("#banners .flash")
    expect(success).to_have_attribute("data-category", "success")
    assert success.get_attribute("role") == "status"
    assert flash_background(page) == "rgb(220, 245, 231)"
    add_member(page, "ada@example.com")  # a duplicate: said by the form, which keeps what was typed
    expect(page.locator("#add-member [role=alert]")).to_contain_text("already exists")
    assert page.input_value("#add-member input[name=email]") == "ada@example.com"
    assert page.input_value("#add-member input[name=password]") == ""
    browse.goto("/account/")
    page.fill("input[name=current_password]", PASSWORD)
    page.fill("input[name=new_password]", "a new password 1")
    page.fill("input[name=new_password_confirm]", "another password 2")
    with page.expect_navigation():
        page.click("button:has-text('Change password')")
    error = page.locator("#banners .flash")
    expect(error).to_have_attribute("data-category", "error")
    assert error.get_attribute("role") == "alert"
    assert flash_background(page) == "rgb(253, 232, 230)"
    browse.screenshot("flash-error")
    # the refused add is a 400 the browser logs as a console error; everything else must be clean
    browse.watch.errors = [error for error in browse.watch.errors if "400" not in error]
    browse.watch.assert_clean()


def test_the_confirm_dialog_cancels_and_proceeds(browse: Browse):
    page = browse.page
    set_up_owner(browse)
    browse.goto("/inbox/settings")
    expect(page.locator("text=No labels yet")).to_be_visible()
    page.fill("input[name=name]", "wholesale")
    with page.expect_navigation():
        page.click("button:has-text('Add label')")
    dialog = page.locator("#confirm-dialog")
    page.click(".label-list button:has-text('remove')")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Delete the label wholesale?")
    browse.screenshot("confirm-dialog")
    page.click("#confirm-cancel")
    expect(dialog).to_be_hidden()
    expect(page.locator(".label-list .label", has_text="wholesale")).to_be_visible()
    page.click(".label-list button:has-text('remove')")
    with page.expect_navigation():
        page.click("#confirm-ok")
    expect(page.locator(".label-list .label", has_text="wholesale")).to_have_count(0)
    expect(page.locator("#banners .flash-success")).to_be_visible()
    browse.watch.assert_clean()


def test_times_show_in_the_business_time_zone_set_under_general(browse: Browse):
    page = browse.page
    set_up_owner(browse)
    browse.goto("/settings/general")
    page.fill("input[name='general.timezone']", "Mars/Olympus")
    page.fill("input[name='general.business_name']", "Rosa's Bakery")
    page.click("button:has-text('Save')")
    expect(page.locator(".field-error")).to_contain_text("not a time zone name")
    assert page.input_value("input[name='general.timezone']") == "Mars/Olympus"
    assert page.input_value("input[name='general.business_name']") == "Rosa's Bakery"
    browse.screenshot("general-error")
    page.fill("input[name='general.timezone']", "Asia/Kathmandu")
    with page.expect_navigation():
        page.click("button:has-text('Save')")
    expect(page.locator("#banners .flash-success")).to_be_visible()
    assert page.get_attribute("body", "data-timezone") == "Asia/Kathmandu"
    browse.goto("/admin/audit")
    cell = page.locator("#audit-events tbody tr td time").first
    stored = datetime.fromisoformat(cell.get_attribute("datetime"))
    assert cell.inner_text() == stored.astimezone(ZoneInfo("Asia/Kathmandu")).strftime("%Y-%m-%d %H:%M:%S")
    # the refused form is a 400 the browser logs as a console error; everything else must be clean
    browse.watch.errors = [error for error in browse.watch.errors if "400" not in error]
    browse.watch.assert_clean()


def test_the_inbox_shows_the_business_clock_in_24_hours_whatever_the_browser_says(browser, live_server, app):
    """A browser in Los Angeles with a 12-hour locale still sees Berlin's wall clock as the server writes it."""
    context = browser.new_context(
        viewport=SIZES["desktop"], locale="en-US", timezone_id="America/Los_Angeles", service_workers="block"
    )
    context.route(lambda url: not _is_loopback(url), lambda route: route.abort())
    browse = Browse(page=context.new_page(), base_url=live_server.url, watch=Watch())
    browse.page.on("pageerror", lambda error: browse.watch.errors.append(f"uncaught: {error}"))
    page = browse.page
    try:
        set_up_owner(browse)
        state = app.extensions["sigdesk"]
        with state.database.session() as session:
            settings.set_text(session, state.cipher, "general.timezone", "Europe/Berlin")
        conversation = customer_writes(state.database, "4915112345670", "Are you open today?", name="Carla")
        browse.goto("/")
        page.click(f"#conv-{conversation}")
        expect(page.locator(".thread")).to_be_visible()
        expect(page.locator("#panel .panel")).to_be_attached()

        def shown(node) -> str:
            stored = datetime.fromisoformat(node.get_attribute("datetime")).replace(tzinfo=timezone.utc)
            return stored.astimezone(ZoneInfo("Europe/Berlin")).strftime("%Y-%m-%d %H:%M")

        bubble = page.locator("#messages time[datetime]").last
        assert bubble.inner_text() == shown(bubble)[-5:]
        row = page.locator(f"#conv-{conversation} time.conv-time")
        assert row.inner_text() == shown(row)[-5:]
        started = page.locator("#panel time[data-date]").first
        assert started.inner_text() == shown(started)
        assert not re.search(r"\b(AM|PM)\b", page.locator("body").inner_text())
        page.click("[data-snooze='tomorrow']")  # 09:00 on Berlin's clock, not Los Angeles'
        expect(page.locator("#panel time[data-date]").nth(1)).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d 09:00$"))
        expect(page.locator("#messages .activity").last).to_contain_text(re.compile(r"snoozed this until \S+ 09:00\."))
    finally:
        context.close()
    assert browse.watch.errors == []


def test_assign_to_me_goes_away_once_the_conversation_is_mine(browse: Browse, app):
    page = browse.page
    set_up_owner(browse)
    conversation = customer_writes(app.extensions["sigdesk"].database, "4915112345671", "Hello?", name="Dora")
    browse.goto("/")
    page.click(f"#conv-{conversation}")
    page.click("[data-action='assign-me']")
    expect(page.locator("#assign-select option:checked")).to_have_text("Olive Owner (me)")
    expect(page.locator("[data-action='assign-me']")).to_have_count(0)
    page.reload()
    page.click(f"#conv-{conversation}")
    expect(page.locator(".thread")).to_be_visible()
    expect(page.locator("[data-action='assign-me']")).to_have_count(0)
    browse.watch.assert_clean()
