"""The Contacts page and a contact's page in Chromium, with the real server and worker: filter by a tag without
a reload (the filter kept in the URL), edit the record, and see a customer's STOP (a signed webhook through
the fake Graph API) mark the open contact as opted out within a second, without reloading.

Screenshots of both pages at 1280 px and 390 px are saved under test-artifacts/.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from sigdesk.actor import Actor
from sigdesk.auth import services as accounts
from sigdesk.lifecycle import commands as lifecycle
from sigdesk.models import ConsentEvent, Contact, Conversation
from tests import factories
from tests.browser.conftest import ARTIFACTS, PHONE
from tests.browser.test_inbox import LIVE_MS, Agent
from tests.waiting import wait_for

pytestmark = pytest.mark.browser

APP_SECRET = factories.APP_SECRET
ROSA = "15557770001"
OTHER = "15557770002"


def customer_says(fake_graph, wa_id: str, wamid: str, words: str, name: str) -> None:
    body = factories.text_message(wa_id, words, wamid=wamid, name=name, meta=factories.metadata())
    response = fake_graph.post_signed(json.dumps(body).encode())
    assert response.status_code == 200, response.text


def contact_id(app, wa_id: str) -> int | None:
    with app.extensions["sigdesk"].database.session() as session:
        return session.scalar(select(Contact.id).where(Contact.wa_id == wa_id))


@pytest.fixture
def owner_agent(browser, live_server, app, fake_graph) -> Iterator[Agent]:
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        accounts.create_user(session, "owner@example.com", "Olive Owner", "owner", "correct horse battery", rounds=4)
        factories.whatsapp_connection(
            session, state.cipher, fake_graph.url, **{"whatsapp.read_receipts": "false", "onboarding.step": "done"}
        )
    fake_graph.connect_webhook(live_server.url + "/webhooks/whatsapp", APP_SECRET)
    customer_says(fake_graph, ROSA, "wamid.ROSA.1", "Hello, do you deliver cakes?", "Rosa Rossi")
    customer_says(fake_graph, OTHER, "wamid.OTHER.1", "Opening hours?", "Otto Other")
    rosa = wait_for(lambda: contact_id(app, ROSA), timeout=20)
    wait_for(lambda: contact_id(app, OTHER), timeout=20)
    with state.database.session() as session:
        vip = lifecycle.create_tag(session, Actor.system("cli"), "VIP", 2)
        lifecycle.tag_contact(session, Actor.system("cli"), rosa, vip.id)
        session.commit()
    person = Agent(browser, live_server.url, "owner@example.com")
    yield person
    person.context.close()


def shot(agent: Agent, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    agent.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_filter_by_tag_edit_a_contact_and_see_a_stop_arrive_live(owner_agent, app, fake_graph):
    page = owner_agent.page
    rosa, other = contact_id(app, ROSA), contact_id(app, OTHER)

    page.goto(owner_agent.base_url + "/contacts/")
    expect(page.locator("#contact-rows tr[data-contact-id]")).to_have_count(2)
    shot(owner_agent, "contacts-list-desktop")

    # filtering swaps the table in place: no navigation, and the URL keeps the filter
    page.evaluate("() => { window.notReloaded = true; }")
    page.select_option("#filter-tag", "VIP")
    expect(page.locator("#contact-rows tr[data-contact-id]")).to_have_count(1)
    expect(page.locator(f'#contact-rows tr[data-contact-id="{rosa}"]')).to_be_visible()
    assert "tag=VIP" in page.url and page.evaluate("() => window.notReloaded") is True
    expect(page.locator("#contact-count")).to_contain_text("1 contact")

    # the column chooser is remembered
    page.click("#column-chooser summary")
    page.check('#column-chooser input[data-column="city"]')
    expect(page.locator('#contacts th[data-col="city"]')).to_be_visible()
    page.reload()
    expect(page.locator('#contacts th[data-col="city"]')).to_be_visible()
    expect(page.locator(f'#contact-rows tr[data-contact-id="{other}"]')).to_have_count(0)  # the filter survived

    page.set_viewport_size(PHONE)
    shot(owner_agent, "contacts-list-phone")
    # on a phone the table scrolls inside its box: the page itself does not get wider than the screen
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"] + 1
    page.set_viewport_size({"width": 1280, "height": 800})

    page.click(f'#contact-rows tr[data-contact-id="{rosa}"] td.name a')
    expect(page.locator("#contact-name")).to_have_text("Rosa Rossi")
    page.fill("#field-name", "Rosa Rossi-Bianchi")
    page.fill("#field-email", "not an email")
    page.click("#record-save")
    expect(page.locator("#email-error")).to_contain_text("not an email address")
    expect(page.locator("#field-name")).to_have_value("Rosa Rossi-Bianchi")  # what was typed is kept
    # the refused form came back as a 400, which Chromium logs; that one is expected
    assert [error for error in owner_agent.watch.errors if "status of 400" not in error] == []
    owner_agent.watch.errors.clear()
    page.fill("#field-email", "rosa@example.com")
    page.fill("#field-company", "Konditorei Rossi")
    page.click("#record-save")
    expect(page.locator("#contact-name")).to_have_text("Rosa Rossi-Bianchi")
    expect(page.locator("#profile-name")).to_have_text("Rosa Rossi")  # WhatsApp's name stays apart
    expect(page.locator("#field-company")).to_have_value("Konditorei Rossi")
    expect(page.locator("#opted-out-badge")).to_have_count(0)
    # the page listens for live changes before the customer writes
    page.wait_for_timeout(500)
    shot(owner_agent, "contact-page-desktop")

    customer_says(fake_graph, ROSA, "wamid.ROSA.STOP", "STOP", "Rosa Rossi")
    wait_for(lambda: _opted_out(app, rosa), timeout=20)
    stored = time.monotonic()
    expect(page.locator("#opted-out-badge")).to_be_visible(timeout=1000)
    assert time.monotonic() - stored < 1.0
    expect(page.locator("#timeline")).to_contain_text("Opted out of marketing")
    expect(page.locator("#consent-now")).to_have_text("Opted out")

    page.set_viewport_size(PHONE)
    shot(owner_agent, "contact-page-phone")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"] + 1

    # the list marks them too
    page.goto(owner_agent.base_url + "/contacts/")
    expect(page.locator(f'#contact-rows tr[data-contact-id="{rosa}"] .opted-out')).to_be_visible(timeout=LIVE_MS)
    owner_agent.watch.assert_clean()


def _opted_out(app, contact: int) -> bool:
    with app.extensions["sigdesk"].database.session() as session:
        return session.scalar(select(ConsentEvent.id).where(ConsentEvent.contact_id == contact)) is not None


def test_the_inbox_panel_edits_the_record_and_follows_a_stop_live(owner_agent, app, fake_graph):
    page = owner_agent.page
    rosa = contact_id(app, ROSA)
    with app.extensions["sigdesk"].database.session() as session:
        conversation = session.scalar(select(Conversation.id).where(Conversation.contact_id == rosa))
    owner_agent.open(conversation)
    panel = page.locator(f'#panel .panel[data-contact-id="{rosa}"]')
    expect(panel).to_be_attached()
    page.locator("#panel-contact-edit summary").click()
    page.fill("#panel-contact-form input[name=company]", "Konditorei Rossi")
    page.fill("#panel-contact-form input[name=email]", "not an email")
    page.click("#panel-contact-form button[type=submit]")
    expect(page.locator("#panel-contact-form .panel-error")).to_contain_text("not an email address")
    assert [error for error in owner_agent.watch.errors if "status of 400" not in error] == []
    owner_agent.watch.errors.clear()
    page.fill("#panel-contact-form input[name=email]", "rosa@example.com")
    page.click("#panel-contact-form button[type=submit]")
    expect(page.locator('#panel [data-contact-field="company"]')).to_have_text("Konditorei Rossi")
    expect(page.locator('#panel [data-contact-field="email"]')).to_have_text("rosa@example.com")
    expect(page.locator("#panel-open-contact")).to_have_attribute("href", f"/contacts/{rosa}")

    customer_says(fake_graph, ROSA, "wamid.ROSA.STOP", "STOP", "Rosa Rossi")
    wait_for(lambda: _opted_out(app, rosa), timeout=20)
    stored = time.monotonic()
    expect(page.locator('#panel [data-marketing-consent="opted_out"]')).to_be_visible(timeout=1000)
    assert time.monotonic() - stored < 1.0
    expect(page.locator("#panel .opted-out")).to_be_visible()
    owner_agent.watch.assert_clean()
