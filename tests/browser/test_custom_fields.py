"""Settings → Contact fields in Chromium: an admin defines a field (the form shows only the parts its kind
uses), gives a contact a value on the contact's page (a value against the field's pattern is refused by
the field), and deletes the field after a confirmation that says how many contacts have a value."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.browser.conftest import Browse
from tests.browser.test_auth_flow import set_up_owner

pytestmark = pytest.mark.browser

VALUE = '[name="fields.customer_number"]'


def test_an_admin_defines_a_field_sets_a_value_and_deletes_the_field(browse: Browse, app):
    page = browse.page
    with app.extensions["sigdesk"].database.session() as session:
        contact_id = factories.contact(session, "4915112345678", name="Ada").id
    set_up_owner(browse)
    browse.goto("/admin/contact-fields")
    expect(page.locator('[data-setting="contact_fields"][aria-current="page"]')).to_have_count(1)

    form = page.locator("#field-new-form")
    form.locator("select[name=kind]").select_option("choice")
    expect(form.locator("textarea[name=options]")).to_be_visible()
    expect(form.locator("input[name=pattern]")).to_be_hidden()
    form.locator("select[name=kind]").select_option("text")
    expect(form.locator("textarea[name=options]")).to_be_hidden()
    form.locator("input[name=label]").fill("Customer number")
    form.locator("input[name=pattern]").fill(r"C-\d{4}")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    expect(page.locator('tr[data-field="customer_number"]')).to_contain_text("Customer number")
    browse.screenshot("contact-fields-settings")

    browse.goto(f"/contacts/{contact_id}")
    page.locator(VALUE).fill("1234")
    with page.expect_navigation():
        page.click("#record-save")
    expect(page.locator('[id="fields.customer_number-error"]')).to_contain_text("Customer number")
    page.locator(VALUE).fill("C-1234")
    with page.expect_navigation():
        page.click("#record-save")
    expect(page.locator(VALUE)).to_have_value("C-1234")

    browse.goto("/admin/contact-fields")
    page.locator('tr[data-field="customer_number"] a.danger').click()
    expect(page.locator("#field-delete-values")).to_contain_text("1 contact(s) have a value")
    with page.expect_navigation():
        page.get_by_role("button", name="Delete the field").click()
    expect(page.locator('tr[data-field="customer_number"]')).to_have_count(0)
    browse.goto(f"/contacts/{contact_id}")
    expect(page.locator(VALUE)).to_have_count(0)
    # The refused form came back as a 400 page, which Chromium logs; anything else is a fault.
    browse.watch.errors = [error for error in browse.watch.errors if "status of 400" not in error]
    browse.watch.assert_clean()
