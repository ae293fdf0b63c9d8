"""Contacts → Import in Chromium, with the real server and its worker: a CSV with bad rows is uploaded, its
columns mapped from a preview, the import followed on its page (progress, then counts), and the refused rows
downloaded as CSV with their line and reason; then the whole import is undone, after confirming, by the worker
while the page follows it."""

from __future__ import annotations

import csv

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, Browse
from tests.browser.test_auth_flow import set_up_owner

pytestmark = pytest.mark.browser


def test_a_csv_with_errors_is_imported_through_the_page_and_its_error_report_read(browse: Browse, app, tmp_path):
    page = browse.page
    source = tmp_path / "kunden.csv"
    source.write_text(
        "Telefon;Name;Stadt\n+49 170 1234567;Zoë;Köln\n12;Kaputt;Bonn\n+44 7911 123456;Bob;=HYPERLINK(1)\n"
        "+44 7911 123456;Bob again;London\n",
        encoding="utf-8-sig",
    )
    set_up_owner(browse)
    browse.goto("/admin/imports/")
    page.set_input_files("#import-upload input[type=file]", str(source))
    page.click("#import-upload button[type=submit]")
    preview = page.locator("#import-preview")
    expect(preview).to_contain_text("Zoë")
    expect(page.locator("select[name=map-0]")).to_have_value("phone")
    expect(page.locator("select[name=map-1]")).to_have_value("name")
    page.select_option("select[name=map-2]", "city")
    browse.screenshot("imports-mapping")
    page.click("#import-map button[type=submit]")

    expect(page.locator("#import-state")).to_have_text("Finished.", timeout=15_000)
    counts = page.locator("#import-counts")
    expect(counts.locator("[data-count=created]")).to_have_text("2")
    expect(counts.locator("[data-count=rejected]")).to_have_text("2")
    browse.screenshot("imports-done")
    with page.expect_download() as download:
        page.click("#import-errors")
    assert download.value.suggested_filename == "kunden-errors.csv"
    saved = tmp_path / "errors.csv"
    download.value.save_as(saved)
    with open(saved, encoding="utf-8-sig", newline="") as report:
        rows = list(csv.reader(report))
    assert rows[0] == ["Telefon", "Name", "Stadt", "line", "error"]
    assert rows[1][:4] == ["12", "Kaputt", "Bonn", "3"] and "phone number" in rows[1][4]
    assert rows[2][:4] == ["'+44 7911 123456", "Bob again", "London", "5"] and "Duplicate of line 4" in rows[2][4]

    page.click("#import-undo button")
    with page.expect_navigation():
        page.click("#confirm-ok")
    # the server's worker undoes it, not the request: the page follows it (undoing, then undone)
    expect(page.locator("#import-state")).to_contain_text("Undone", timeout=15_000)
    expect(page.locator("#import-undone-summary")).to_contain_text("Import undone: 2 contacts deleted")
    expect(page.locator("#import-undo-counts [data-count=undo_processed]")).to_have_text("2 of 2")
    page.set_viewport_size(PHONE)
    browse.screenshot("imports-undone-phone")
    browse.watch.assert_clean()
