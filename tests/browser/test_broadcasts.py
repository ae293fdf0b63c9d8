"""A broadcast in Chromium, as a shop owner runs one: a campaign to a segment, started, watched live, paused and
resumed, finished; at desktop and phone width without sideways scrolling.

Real parts: the waitress server and its worker (the broadcast engine sends on its own loop), the fake Graph API
over HTTP (it records every send), Debian's Chromium. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from sigdesk.actor import Actor
from sigdesk.auth import services as accounts
from sigdesk.segments.commands import create_segment
from sigdesk.settings import services as settings
from tests import factories
from tests.browser.conftest import DESKTOP, PHONE, Browse
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.database]

OWNER_EMAIL = "owner@example.com"
CUSTOMERS = 24
RATE = 3  # messages per second: slow enough to watch, pause and resume on the way
OVERFLOW = "document.scrollingElement.scrollWidth - window.innerWidth"


@pytest.fixture
def shop(app, fake_graph):
    """A connected SigDesk with an approved utility template and a segment of regulars who opted in."""
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        accounts.create_user(session, OWNER_EMAIL, "Olive Owner", "owner", PASSWORD, rounds=4)
        factories.whatsapp_connection(
            session, state.cipher, fake_graph.url, **{"whatsapp.read_receipts": "false", "onboarding.step": "done"}
        )
        settings.set_text(session, state.cipher, "general.timezone", "Europe/Berlin")
        for number in range(CUSTOMERS):
            factories.contact(
                session,
                f"49170555{number:05d}",
                display_name=f"Regular Customer {number}",
                marketing_consent="opted_in",
            )
        factories.template(session, "fresh_batch", body="Hi {{1}}, a fresh batch is in today.", category="UTILITY")
        create_segment(
            session,
            Actor.system("cli"),
            "Regulars",
            {"match": "all", "conditions": [{"field": "consent", "op": "is", "value": "opted_in"}]},
        )
        session.commit()


def sign_in(browse: Browse) -> None:
    page = browse.page
    browse.goto("/login")
    page.fill("input[name=email]", OWNER_EMAIL)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")


def confirm(page, button: str) -> None:
    """The app's own confirmation dialog, then the page the form post leads to."""
    page.click(button)
    expect(page.locator("#confirm-dialog")).to_be_visible()
    with page.expect_navigation():
        page.click("#confirm-ok")


def count(page, state: str) -> int:
    return int(page.locator(f'[data-count="{state}"]').inner_text())


def no_sideways_scroll(browse: Browse, name: str) -> None:
    browse.screenshot(name)
    assert browse.page.evaluate(OVERFLOW) <= 0, f"{name} scrolls sideways"


def test_an_owner_broadcasts_to_a_segment_watches_it_pauses_resumes_and_sees_it_complete(
    browse: Browse, shop, fake_graph
):
    page = browse.page
    sign_in(browse)
    with page.expect_navigation():
        page.click("#nav-broadcasts")
    with page.expect_navigation():
        page.click("#new-broadcast")

    page.fill("#field-name", "Fresh batch")
    page.select_option("#field-template", label="fresh_batch (en_US, utility)")
    variable = page.locator("fieldset[data-template]:visible input[name$='.body.1']")
    expect(variable).to_be_visible()
    variable.fill("{contact.first_name|there}")
    page.check("#audience-segment")
    page.select_option("#field-segment_id", label="Regulars")
    page.fill("#field-rate_per_second", str(RATE))
    no_sideways_scroll(browse, "broadcast-desktop-form")
    with page.expect_navigation():
        page.click("#broadcast-save")

    # the draft: who gets it, how long it takes, what the first customer reads
    expect(page.locator("#will-send")).to_have_text(str(CUSTOMERS))
    expect(page.locator("#duration")).to_have_text(f"{CUSTOMERS // RATE} s")
    expect(page.locator("#preview-text")).to_have_text("Hi Regular, a fresh batch is in today.")
    no_sideways_scroll(browse, "broadcast-desktop-draft")
    page.set_viewport_size(PHONE)
    no_sideways_scroll(browse, "broadcast-phone-draft")
    page.set_viewport_size(DESKTOP)

    confirm(page, "#start-broadcast")
    expect(page.locator("#broadcast-status")).to_have_text("running")
    # live progress: the counts grow while the page stays put
    expect(page.locator('[data-count="sent"]')).not_to_have_text("0", timeout=15_000)
    expect(page.locator("#progress-chart .uplot")).to_be_visible(timeout=10_000)
    # the recipient filter's counts follow the same poll as the tiles
    page.wait_for_function(
        """() => {
            const tile = document.querySelector('[data-count="sent"]').textContent;
            const option = document.querySelector('#recipient-state option[value="sent"]').textContent;
            return tile !== "0" && option === "Sent (" + tile + ")";
        }"""
    )
    no_sideways_scroll(browse, "broadcast-desktop-running")

    confirm(page, "#pause-broadcast")
    expect(page.locator("#broadcast-status")).to_have_text("paused")
    expect(page.locator("#pause-banner")).to_contain_text("Paused by a person")
    time.sleep(1.5)  # what was already on its way to Meta arrives
    held = len(fake_graph.sent)
    assert held < CUSTOMERS
    time.sleep(2.5)
    assert len(fake_graph.sent) == held, "nothing more is sent while paused"

    # leaving and coming back shows the server's state, not the page's
    campaign = page.url
    with page.expect_navigation():
        page.click("#nav-broadcasts")
    expect(page.locator("#broadcast-list [data-status]").first).to_have_text("paused")
    browse.goto(campaign.removeprefix(browse.base_url))
    expect(page.locator('[data-count="sent"]')).to_have_text(str(held), timeout=5_000)

    confirm(page, "#resume-broadcast")
    expect(page.locator("#broadcast-status")).to_have_text("running")
    # the page loads itself again when the status changes: completed, with every customer sent once
    expect(page.locator("#broadcast-status")).to_have_text("completed", timeout=30_000)
    expect(page.locator('[data-count="sent"]')).to_have_text(str(CUSTOMERS))
    expect(page.locator("#pause-broadcast")).to_have_count(0)
    recipients = [message["to"].lstrip("+") for message in fake_graph.sent]
    assert len(recipients) == CUSTOMERS and len(set(recipients)) == CUSTOMERS
    assert count(page, "failed") == 0 and count(page, "pending") == 0
    no_sideways_scroll(browse, "broadcast-desktop-completed")
    expect(page.locator("#recipient-table tbody tr")).to_have_count(CUSTOMERS)
    assert re.search(r"Regular Customer", page.locator("#recipient-table").inner_text())

    page.set_viewport_size(PHONE)
    page.reload()
    expect(page.locator("#progress-chart .uplot")).to_be_visible()
    no_sideways_scroll(browse, "broadcast-phone-completed")
    for path in ("/broadcasts/", "/broadcasts/new", "/admin/broadcasts"):
        browse.goto(path)
        no_sideways_scroll(browse, "broadcast-phone" + path.replace("/", "-").rstrip("-"))
    page.set_viewport_size(DESKTOP)
    browse.watch.assert_clean()


def counts_in_view(browse: Browse, name: str) -> None:
    """Every "skipped because" count is on screen, not scrolled off to the right of its table."""
    browse.screenshot(name)
    cells = browse.page.locator("#skipped-reasons [data-skipped-count]")
    assert cells.count() >= 3
    width = browse.page.evaluate("window.innerWidth")
    for index in range(cells.count()):
        box = cells.nth(index).bounding_box()
        scroller = browse.page.evaluate(
            "cell => { const box = cell.closest('.table-scroll').getBoundingClientRect(); return box.right; }",
            cells.nth(index).element_handle(),
        )
        assert box is not None and box["width"] > 0, name
        assert box["x"] >= 0 and box["x"] + box["width"] <= min(width, scroller) + 0.5, f"{name}: count {index} hidden"


def test_the_draft_shows_every_skip_reason_with_its_count_at_desktop_and_phone_width(app, browse: Browse, shop):
    """A marketing template to everyone: customers without an opt-in, with +1 numbers or numbers Meta cannot
    reach are skipped, each reason with its count in view."""
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        factories.contact(session, "12025550123", display_name="US Customer", marketing_consent="opted_in")
        factories.contact(session, "12025550124", display_name="US Customer 2", marketing_consent="opted_in")
        factories.contact(session, "4917066600001", display_name="Never asked")
        factories.contact(session, "123", display_name="Typo", marketing_consent="opted_in")
        factories.template(session, "big_sale", body="A sale!", category="MARKETING")
        create_segment(session, Actor.system("cli"), "Everyone", {"match": "all", "conditions": []})
        session.commit()
    sign_in(browse)
    page = browse.page
    browse.goto("/broadcasts/new")
    page.fill("#field-name", "Big sale")
    page.select_option("#field-template", label="big_sale (en_US, marketing)")
    page.check("#audience-segment")
    page.select_option("#field-segment_id", label="Everyone")
    with page.expect_navigation():
        page.click("#broadcast-save")
    expect(page.locator("#will-send")).to_have_text(str(CUSTOMERS))
    expect(page.locator("#skipped-total")).to_have_text("4")
    expect(page.locator("#skipped-reasons")).to_contain_text("US number (+1)")
    counts_in_view(browse, "broadcast-desktop-draft-skipped")
    page.set_viewport_size(PHONE)
    counts_in_view(browse, "broadcast-phone-draft-skipped")
    no_sideways_scroll(browse, "broadcast-phone-draft-skipped")
    page.set_viewport_size(DESKTOP)
    browse.watch.assert_clean()
