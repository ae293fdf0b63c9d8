"""Settings → Duplicates in Chromium: an admin finds a suggested pair, reviews it, picks the winning value of
a conflicting field, confirms, and lands back on the list with a flash that names what happened."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from sigdesk.actor import Actor
from sigdesk.merge import commands
from sigdesk.models import Contact, User
from tests import factories
from tests.browser.conftest import Browse
from tests.browser.test_auth_flow import set_up_owner

pytestmark = pytest.mark.browser


def test_an_admin_merges_two_duplicates_through_the_page(browse: Browse, app):
    page = browse.page
    with app.extensions["sigdesk"].database.session() as session:
        kept = factories.contact(session, "5511987654321", "Ana Souza", city="Lisbon")
        merged = factories.contact(session, "551187654321", "ana souza", city="Porto", company="ACME")
        factories.message(session, factories.conversation(session, merged), text="olá")
        session.commit()
        kept_id, merged_id = kept.id, merged.id
    set_up_owner(browse)
    browse.goto("/admin/duplicates")
    row = page.locator(f'tr[data-pair="{kept_id}-{merged_id}"]')
    expect(row.locator('[data-reason="phone"]')).to_have_text("Same phone number")
    expect(row.locator('[data-reason="name"]')).to_have_text("Same name")
    with page.expect_navigation():
        row.get_by_role("link", name="Review and merge").click()

    city = page.locator('tr[data-field="city"]')
    expect(city.locator('input[value="keep"]')).to_be_checked()
    city.get_by_label("Porto").check()
    expect(page.locator('tr[data-field="company"] .merge-wins')).to_have_text("ACME")
    expect(page.locator("#merge-moves")).to_contain_text("1 conversation with 1 message")
    expect(page.locator("#merge-remarks")).to_contain_text("keeps its WhatsApp number")
    browse.screenshot("merge-review")
    page.click("#merge-confirm")
    with page.expect_navigation():
        page.click("#confirm-ok")

    expect(page.locator(".flash")).to_contain_text(f"Merged contact {merged_id} into contact {kept_id}")
    expect(page.locator("#no-duplicates")).to_be_visible()
    with app.extensions["sigdesk"].database.session() as session:
        contact = session.get(Contact, kept_id)
        assert (contact.city, contact.company) == ("Porto", "ACME")
        assert session.get(Contact, merged_id) is None
    browse.watch.assert_clean()


def test_an_open_inbox_drops_a_conversation_merged_away(browse: Browse, app):
    """A merge deletes the merged contact's conversation (its messages join the kept one's): an inbox open on
    it hears so live, its list loses the dead row and the thread says the conversation is gone."""
    page = browse.page
    database = app.extensions["sigdesk"].database
    with database.session() as session:
        kept = factories.contact(session, "5511987654321", "Ana Souza")
        merged = factories.contact(session, "551187654321", "ana souza")
        mine, theirs = factories.conversation(session, kept), factories.conversation(session, merged)
        factories.message(session, mine, text="kept hello")
        factories.message(session, theirs, text="merged olá")
        session.commit()
        kept_id, merged_id, mine_id, theirs_id = kept.id, merged.id, mine.id, theirs.id
    set_up_owner(browse)
    browse.goto("/")
    expect(page.locator("#live-state")).to_have_class(re.compile("live-ok"))
    page.click(f"#conv-{theirs_id}")
    expect(page.locator(f".thread[data-conversation-id='{theirs_id}']")).to_be_visible()

    with database.session() as session:
        owner = session.scalar(select(User).where(User.role == "owner"))
        commands.merge_contacts(session, Actor(owner, "cli"), kept_id, merged_id)
        session.commit()

    expect(page.locator(f"#conv-{theirs_id}")).to_have_count(0)
    expect(page.locator(f"#conv-{mine_id}")).to_be_visible()
    expect(page.locator(".empty-state.lost")).to_contain_text("merged into another")
    # the page asked for the gone conversation once before it knew (as when one is reassigned away)
    browse.watch.errors = [error for error in browse.watch.errors if "status of 404" not in error]
    browse.watch.assert_clean()
