"""Settings → Lead score in Chromium: an admin adds a rule and sees how many contacts it matches, a refused
rule comes back by its form with what was typed, and deleting a rule asks first."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.browser.conftest import Browse
from tests.browser.test_auth_flow import set_up_owner

pytestmark = pytest.mark.browser


def test_an_admin_adds_a_rule_sees_its_matches_and_deletes_it_after_confirming(browse: Browse, app):
    page = browse.page
    with app.extensions["sigdesk"].database.session() as session:
        factories.contact(session, "4915112345670", name="Ada", marketing_consent="opted_in")
        factories.contact(session, "4915112345671", name="Bo")
    set_up_owner(browse)
    browse.goto("/admin/lead-score")
    expect(page.locator('[data-setting="lead_score"][aria-current="page"]')).to_have_count(1)

    form = page.locator("#rule-new")
    form.locator("select[name=kind]").select_option("has_tag")
    form.locator("input[name=argument]").fill("Nobody has this")
    form.locator("input[name=label]").fill("Tagged")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    expect(page.locator("#rule-new-error")).to_contain_text("There is no tag")
    expect(page.locator("#rule-new input[name=label]")).to_have_value("Tagged")

    form.locator("select[name=kind]").select_option("opted_in")
    form.locator("input[name=argument]").fill("")
    form.locator("input[name=points]").fill("30")
    form.locator("input[name=label]").fill("Said yes")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    row = page.locator("#rule-list tr[data-rule]")
    expect(row).to_have_count(1)
    expect(row.locator("[data-matches]")).to_have_text("1 contact(s), +30 each")
    browse.screenshot("lead-score-settings")

    row.get_by_role("button", name="Delete").click()
    expect(page.locator("#confirm-message")).to_contain_text("Delete the rule Said yes?")
    with page.expect_navigation():
        page.locator("#confirm-ok").click()
    expect(page.locator("#rule-list")).to_have_count(0)
    # The refused form came back as a 422 page, which Chromium logs; anything else is a fault.
    browse.watch.errors = [error for error in browse.watch.errors if "status of 422" not in error]
    browse.watch.assert_clean()
