"""Layout rules every page keeps, checked on the pages a shop owner actually opens: nothing runs off a phone's
screen, wide tables scroll inside their own box, checkboxes keep their size next to long labels, the thread
header wraps instead of overlapping, and every form error looks like an error flash. Screenshots go to
test-artifacts/."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from sigdesk import navigation
from tests.browser.conftest import DESKTOP, PHONE, Browse
from tests.browser.test_auth_flow import OWNER_EMAIL, create_owner, set_up_owner, sign_out
from tests.browser.test_navigation import click_section, open_setting
from tests.conftest import PASSWORD
from tests.inbox.helpers import customer_writes

pytestmark = pytest.mark.browser

ERROR_BACKGROUND = "rgb(253, 232, 230)"
LONG_NAME = "Maria Sophia Schmidt-Hohenberg"

OVERFLOW = "document.scrollingElement.scrollWidth - window.innerWidth"

# For each .table: is it inside a scroll box, does that box scroll sideways, and is every empty-state message
# inside the box's visible width (not centred somewhere off to the right of a wide table)?
TABLES = """() => [...document.querySelectorAll('table.table')].map(table => {
  const box = table.closest('.table-scroll');
  if (!box) return {id: table.id || table.className, wrapped: false};
  const frame = box.getBoundingClientRect();
  const cut = [...box.querySelectorAll('.empty-row .empty')].filter(node => {
    const rect = node.getBoundingClientRect();
    return node.scrollWidth > node.clientWidth + 1 || rect.left < frame.left - 1 || rect.right > frame.right + 1;
  }).map(node => node.innerText.slice(0, 40));
  return {id: table.id || table.className, wrapped: true, scrolls: getComputedStyle(box).overflowX, cut};
})"""


def create_token(browse: Browse, name: str = "bakery-script") -> None:
    browse.goto("/account/")
    browse.page.fill("input[name=name]", name)
    with browse.page.expect_navigation():
        browse.page.click("button:has-text('Create token')")


def assert_tables_scroll_in_their_own_box(page, where: str) -> None:
    for table in page.evaluate(TABLES):
        assert table["wrapped"], f"{where}: table {table['id']} is not in a .table-scroll box"
        assert table["scrolls"] in ("auto", "scroll"), f"{where}: {table['id']}"
        assert table["cut"] == [], f"{where}: {table['id']} cuts off {table['cut']}"


def visit_every_page(browse: Browse, check) -> None:
    """Every primary section, every settings page and the account page, by clicking as a person would."""
    for key in [section.key for section in navigation.sections_for("owner")]:
        click_section(browse, key)
        check(key)
    for entry in navigation.settings_for("owner"):
        open_setting(browse, entry)
        check(entry.key)
    browse.goto("/account/")
    check("account")


def test_no_page_runs_off_a_phone_screen(browse: Browse, app):
    page = browse.page
    page.set_viewport_size(PHONE)
    set_up_owner(browse)
    create_token(browse)
    customer_writes(app.extensions["sigdesk"].database, "4915112345678", "Hallo!", name=LONG_NAME)
    wide = {}

    def check(where: str) -> None:
        overflow = page.evaluate(OVERFLOW)
        if overflow > 0:
            wide[where] = overflow
            browse.screenshot(f"layout-phone-overflow-{where}")

    visit_every_page(browse, check)
    assert wide == {}, "pages wider than the phone (px too wide)"
    revoke = page.locator("button:has-text('Revoke')")
    revoke.scroll_into_view_if_needed()  # scrolls the token table's own box, never the page
    expect(revoke).to_be_in_viewport()
    assert page.evaluate("window.scrollX") == 0
    browse.screenshot("layout-phone-account")
    browse.watch.assert_clean()


def test_wide_tables_scroll_inside_their_own_box_on_a_phone(browse: Browse, auth):
    page = browse.page
    page.set_viewport_size(PHONE)
    set_up_owner(browse)
    auth.create_user("agent", "ada.agent.with.a.long.address@example.com", "Ada Agent")
    create_token(browse)
    visit_every_page(browse, lambda where: assert_tables_scroll_in_their_own_box(page, where))
    for path, shot in (("/admin/templates", "templates"), ("/admin/webhooks", "webhooks"), ("/admin/team", "team")):
        browse.goto(path)
        browse.screenshot(f"layout-phone-table-{shot}")
    # the Team table's last columns are reached by scrolling its box, not cut off
    box = page.locator("#team").locator("xpath=ancestor::div[contains(@class,'table-scroll')][1]")
    box.evaluate("node => { node.scrollLeft = node.scrollWidth; }")
    frame = box.bounding_box()
    last = page.locator("#team thead th").last.bounding_box()
    assert last["x"] + last["width"] <= frame["x"] + frame["width"] + 1
    browse.watch.assert_clean()


def assert_checks_keep_their_size(page, where: str) -> None:
    boxes = page.locator("main input[type=checkbox]:visible, main input[type=radio]:visible")
    assert boxes.count() > 0, where
    for index in range(boxes.count()):
        box = boxes.nth(index).bounding_box()
        assert box["width"] >= 13 and box["height"] >= 13, f"{where}: checkbox {index} is {box}"


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_checkboxes_and_radios_keep_their_size_next_to_long_labels(browse: Browse, size: str):
    page = browse.page
    page.set_viewport_size(PHONE if size == "phone" else DESKTOP)
    create_owner(browse)
    browse.goto("/welcome/inbound")
    assert_checks_keep_their_size(page, "wizard inbound")
    browse.screenshot(f"layout-{size}-wizard-inbound")
    for path in ("/inbox/settings", "/admin/settings", "/admin/whatsapp", "/admin/exports"):
        browse.goto(path)
        assert_checks_keep_their_size(page, path)
    browse.goto("/inbox/settings")
    page.locator("text=Agents see every conversation").scroll_into_view_if_needed()
    browse.screenshot(f"layout-{size}-who-sees-what")
    browse.watch.assert_clean()


# where the text itself is drawn, which may spill out of its element's box
TEXT_BOXES = """selectors => selectors.map(s => {
  const range = document.createRange();
  range.selectNodeContents(document.querySelector(s));
  return range.getBoundingClientRect().toJSON();
})"""


def boxes_intersect(a: dict, b: dict) -> bool:
    return not (
        a["right"] <= b["left"] or b["right"] <= a["left"] or a["bottom"] <= b["top"] or b["bottom"] <= a["top"]
    )


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_thread_header_wraps_instead_of_overlapping(browse: Browse, app, size: str):
    page = browse.page
    page.set_viewport_size(PHONE if size == "phone" else DESKTOP)
    set_up_owner(browse)
    conversation = customer_writes(app.extensions["sigdesk"].database, "4915112345678", "Hallo!", name=LONG_NAME)
    browse.goto("/")
    page.click(f"#conv-{conversation}")
    expect(page.locator("#window-state")).to_contain_text("left")
    head = page.locator(".thread-head")
    number = head.locator(".thread-title .muted")
    expect(number).to_have_text("+4915112345678")
    page.wait_for_load_state("networkidle")
    badge, digits = page.evaluate(TEXT_BOXES, ["#window-state", ".thread-title .muted"])
    browse.screenshot(f"layout-{size}-thread-header")
    assert not boxes_intersect(badge, digits), (badge, digits)
    name = page.locator("#thread-name")
    cut = name.evaluate("n => n.scrollWidth > n.clientWidth + 1")
    assert not cut or name.get_attribute("title") == LONG_NAME
    if size == "desktop":
        assert not cut, "at 1280 px the whole name fits"
    else:
        assert name.bounding_box()["width"] > 150, "the name keeps a readable width on a phone"
    browse.watch.assert_clean()


def assert_error_style(page, selector: str) -> None:
    node = page.locator(selector).first
    expect(node).to_be_visible()
    assert node.evaluate("n => getComputedStyle(n).backgroundColor") == ERROR_BACKGROUND, selector
    assert "flash-error" in node.get_attribute("class"), selector


def test_form_errors_look_like_error_flashes(browse: Browse):
    page = browse.page
    page.set_viewport_size(PHONE)
    create_owner(browse, confirm=PASSWORD + "x")
    expect(page.locator("[role=alert]")).to_contain_text("do not match")
    assert_error_style(page, "[role=alert]:has-text('do not match')")
    browse.screenshot("layout-phone-setup-mismatch")
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=password_confirm]", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    browse.goto("/welcome/backup")
    page.fill("#backup-folder", "relative/folder")
    page.fill("#passphrase", "a good long passphrase")
    page.fill("#passphrase-confirm", "a good long passphrase")
    with page.expect_navigation():
        page.click("#save-backup")
    assert_error_style(page, "[role=alert]:has-text('full path')")
    browse.screenshot("layout-phone-backup-folder-error")
    with page.expect_navigation():
        page.click("#skip-setup")
    browse.goto("/admin/whatsapp")
    with page.expect_navigation():
        page.click("#test-connection")
    assert_error_style(page, "#connection-result")
    browse.screenshot("layout-phone-test-connection")
    sign_out(browse)
    page.fill("input[name=email]", OWNER_EMAIL)
    page.fill("input[name=password]", "not the password")
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert_error_style(page, "[role=alert]:has-text('Wrong email or password')")
    browse.screenshot("layout-phone-bad-login")
    # refused forms answer 400/401, which the browser logs as console errors; everything else must be clean
    browse.watch.errors = [error for error in browse.watch.errors if "40" not in error]
    browse.watch.assert_clean()
