"""Segments on the Contacts page in Chromium: build a filter of three conditions (a tag, a city and a custom
number field), save it as a segment, see its live count in the segment list and exactly its contacts in the
table; after a reload, open it again from the list.

A screenshot of the page with the segment open is saved under test-artifacts/.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from sigdesk.actor import Actor
from sigdesk.contacts.commands import update_contact
from sigdesk.custom_fields.commands import define_field
from sigdesk.lifecycle import commands as lifecycle
from tests import factories
from tests.browser.conftest import Browse
from tests.browser.test_auth_flow import set_up_owner

pytestmark = pytest.mark.browser

ROWS = "#contact-rows tr[data-contact-id]"


def people(app) -> dict[str, int]:
    """Five contacts; only Ada and Eve are VIPs in Berlin with a budget over 1000."""
    actor = Actor.system("cli")
    with app.extensions["sigdesk"].database.session() as session:
        define_field(session, actor, "Budget", "number", key="budget")
        vip = lifecycle.create_tag(session, actor, "VIP", 2)
        ids = {}
        for name, city, tagged, budget in (
            ("Ada", "Berlin", True, "5000"),
            ("Ben", "Berlin", True, "500"),
            ("Cem", "Hamburg", True, "8000"),
            ("Dan", "Berlin", False, "9000"),
            ("Eve", "Berlin", True, "2000"),
        ):
            contact = factories.contact(session, name=name, city=city)
            update_contact(session, actor, contact.id, {"fields": {"budget": budget}}, from_text=True)
            if tagged:
                lifecycle.tag_contact(session, actor, contact.id, vip.id)
            ids[name] = contact.id
        session.commit()
    return ids


def shown(page) -> list[int]:
    return sorted(int(found) for found in page.locator(ROWS).evaluate_all("rows => rows.map(r => r.dataset.contactId)"))


def condition(page, index: int, field: str, op: str, value: str) -> None:
    row = page.locator("#conditions .condition").nth(index)
    row.locator('select[name="f"]').select_option(field)
    row.locator('select[name="o"]').select_option(op)
    row.locator('input[name="v"]').fill(value)


def test_a_segment_built_on_the_page_is_saved_counted_and_opened_again(browse: Browse, app):
    page = browse.page
    ids = people(app)
    wanted = sorted([ids["Ada"], ids["Eve"]])
    set_up_owner(browse)
    browse.goto("/contacts/")
    expect(page.locator(ROWS)).to_have_count(5)
    expect(page.locator("#no-segments")).to_be_visible()

    page.select_option("#filter-tag", "VIP")
    expect(page.locator(ROWS)).to_have_count(4)
    page.click(".more-conditions summary")
    condition(page, 0, "city", "is", "Berlin")
    expect(page.locator(ROWS)).to_have_count(3)
    page.click("#add-condition")
    expect(page.locator("#conditions .condition")).to_have_count(2)
    condition(page, 1, "field:budget", "gt", "1000")
    expect(page.locator(ROWS)).to_have_count(2)
    assert shown(page) == wanted
    expect(page.locator("#contact-count")).to_contain_text("2 contacts")

    page.fill("#segment-name", "Big Berlin VIPs")
    with page.expect_navigation():
        page.click("#segment-save")
    assert re.search(r"[?&]segment=\d+", page.url)
    listed = page.locator("#segment-list li", has_text="Big Berlin VIPs")
    expect(listed.locator(".segment-count")).to_have_text("2")
    expect(listed.locator("a")).to_have_attribute("aria-current", "page")
    expect(page.locator("#segment-heading")).to_contain_text("Big Berlin VIPs")
    expect(page.locator(ROWS)).to_have_count(2)
    assert shown(page) == wanted
    browse.screenshot("contacts-segment-open")

    page.reload()
    with page.expect_navigation():
        page.click("#segment-all")
    expect(page.locator(ROWS)).to_have_count(5)
    with page.expect_navigation():
        page.locator("#segment-list a", has_text="Big Berlin VIPs").click()
    expect(page.locator(ROWS)).to_have_count(2)
    assert shown(page) == wanted
    expect(page.locator("#segment-list li", has_text="Big Berlin VIPs").locator(".segment-count")).to_have_text("2")
    browse.watch.assert_clean()
