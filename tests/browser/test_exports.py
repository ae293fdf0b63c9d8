"""Settings → Exports in Chromium: the contact is found by name or number and picked from a list a page at a
time (no SigDesk id to know), downloaded, and a refused anonymisation comes back with everything typed."""

from __future__ import annotations

import json
import zipfile
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.browser.conftest import PHONE, Browse
from tests.browser.test_auth_flow import set_up_owner

pytestmark = pytest.mark.browser


def people(app) -> dict[str, int]:
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    with app.extensions["sigdesk"].database.session() as session:
        made = {
            f"Rosa {n}": factories.contact(
                session, f"4477009{n:05d}", name=f"Rosa {n}", last_inbound_at=start - timedelta(hours=n)
            ).id
            for n in range(25)
        }
        made["Bob's Bikes"] = factories.contact(session, "15550001111", name="Bob", display_name="Bob's Bikes").id
        return made


def options(picker) -> list[str]:
    return [" ".join(text.split()) for text in picker.locator(".picker-options label").all_inner_texts()]


def test_a_contact_is_picked_by_name_or_number_downloaded_and_a_refusal_keeps_what_was_typed(
    browse: Browse, app, tmp_path
):
    page = browse.page
    ids = people(app)
    set_up_owner(browse)
    browse.goto("/admin/exports/")
    expect(page.locator("text=Contact ID")).to_have_count(0)

    picker = page.locator("#contact-picker")
    picker.locator("input[type=search]").fill("rosa")
    expect(picker.locator(".picker-options label")).to_have_count(20)
    assert options(picker)[:2] == ["Rosa 0 447700900000", "Rosa 1 447700900001"]
    picker.locator(".picker-more").click()
    expect(picker.locator(".picker-options label")).to_have_count(25)
    expect(picker.locator(".picker-more")).to_be_hidden()

    picker.locator("input[type=search]").fill("+44 7700 900 003")
    expect(picker.locator(".picker-options label")).to_have_count(1)
    picker.get_by_label("Rosa 3").check()
    browse.screenshot("exports-contact-picked")
    with page.expect_download() as download:
        page.click("#contact-form button[name=download]")
    assert download.value.suggested_filename == f"sigdesk-contact-{ids['Rosa 3']}.zip"
    saved = tmp_path / "rosa.zip"
    download.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        assert json.loads(archive.read("contact.json"))["contact"][0]["id"] == ids["Rosa 3"]

    doomed = page.locator("#anonymise-picker")
    doomed.locator("input[type=search]").fill("bikes")
    doomed.locator("input[type=search]").press("Enter")  # searches; does not send the form
    expect(doomed.locator(".picker-options label")).to_have_count(1)
    doomed.get_by_label("Bob's Bikes").check()
    page.fill("#anonymise-form input[name=confirm]", "anonymise")
    page.click("#anonymise-form button[name=anonymise]")
    with page.expect_navigation():
        page.click("#confirm-ok")
    expect(page.locator("#anonymise-form [role=alert]")).to_contain_text("Type ANONYMISE")
    expect(doomed.locator("input[type=search]")).to_have_value("bikes")
    expect(page.locator("#anonymise-form input[name=confirm]")).to_have_value("anonymise")
    expect(doomed.get_by_label("Bob's Bikes")).to_be_checked()
    page.set_viewport_size(PHONE)
    browse.screenshot("exports-anonymise-refused-phone")

    page.fill("#anonymise-form input[name=confirm]", "ANONYMISE")
    page.click("#anonymise-form button[name=anonymise]")
    with page.expect_navigation():
        page.click("#confirm-ok")
    bob = ids["Bob's Bikes"]
    expect(page.locator(".flash")).to_contain_text(f"Contact {bob} anonymised")
    # the refused form is a 400 page, which the browser logs as a console error; everything else must be clean
    assert len([error for error in browse.watch.errors if "status of 400" in error]) == 1
    browse.watch.errors = [error for error in browse.watch.errors if "status of 400" not in error]
    browse.watch.assert_clean()


def test_a_search_that_matches_nobody_says_so(browse: Browse, app):
    page = browse.page
    people(app)
    set_up_owner(browse)
    browse.goto("/admin/exports/")
    picker = page.locator("#contact-picker")
    picker.locator("input[type=search]").fill("nobody here")
    expect(picker.locator(".picker-none")).to_be_visible()
    expect(picker.locator(".picker-results")).to_be_hidden()
    browse.watch.assert_clean()


def test_the_contacts_pages_selection_arrives_chosen_and_downloads_with_every_field(browse: Browse, app, tmp_path):
    page = browse.page
    ids = people(app)
    set_up_owner(browse)
    picked = [ids["Rosa 2"], ids["Bob's Bikes"]]
    browse.goto(f"/admin/exports/contacts/export?ids={picked[1]},{picked[0]}")
    form = page.locator("#contacts-export-form")
    expect(form.locator("select[name=scope] option:checked")).to_have_text(
        "The 2 contacts selected on the Contacts page"
    )
    form.locator("select[name=format]").select_option("json")
    browse.screenshot("exports-contacts-selection")
    with page.expect_download() as download:
        form.locator("button[type=submit]").click()
    assert download.value.suggested_filename.startswith("sigdesk-contacts-selection-")
    saved = tmp_path / "picked.jsonl"
    download.value.save_as(saved)
    records = [json.loads(line) for line in saved.read_text().splitlines()]
    assert [record["id"] for record in records] == sorted(picked)
    assert all({"tags", "stage", "fields", "marketing_consent"} <= set(record) for record in records)

    browse.goto("/admin/exports/")  # every contact, from the Exports page itself
    expect(page.locator("#contacts-export-form select[name=scope]")).to_have_value("all")
    page.set_viewport_size(PHONE)
    browse.screenshot("exports-page-phone")
    browse.watch.assert_clean()
