"""The inbox with real parts: two agents in two Chromium contexts, the real server and worker, the fake Graph API.

An inbound webhook (signed, over HTTP) appears live in both windows; a reply reaches the fake Graph
API; ticks advance when the fake posts statuses; a private note never reaches it; search finds the
message. Screenshots of the list, a thread with every message type and the template composer are
saved under test-artifacts/.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from sigdesk.auth import services as accounts
from sigdesk.models import Contact, Conversation, Message, Template
from tests.browser.conftest import ARTIFACTS, DESKTOP, TIMEOUT_MS, Watch, _is_loopback
from tests.conftest import PASSWORD
from tests.inbox.helpers import deliver_fixtures
from tests.waiting import wait_for
from tests import factories

pytestmark = pytest.mark.browser

APP_SECRET = factories.APP_SECRET  # the secret factories.whatsapp_connection stores
LIVE_MS = 5000
EVERY_TYPE = [
    "message_text",
    "message_edit",
    "message_reaction",
    "message_image",
    "message_revoke",
    "message_audio_voice",
    "message_video",
    "message_document",
    "message_sticker_animated",
    "message_location",
    "message_contacts",
    "message_interactive_button_reply",
    "message_interactive_list_reply",
    "message_interactive_nfm_reply",
    "message_interactive_nfm_reply_not_json",
    "message_interactive_call_permission_reply",
    "message_button_quick_reply",
    "message_order",
    "message_forwarded_referral",
    "message_unsupported",
    "message_unknown",
    "message_echo_text",
]


class Agent:
    def __init__(self, browser, base_url: str, email: str) -> None:
        self.context = browser.new_context(
            viewport=DESKTOP, color_scheme="light", locale="en-GB", service_workers="block"
        )
        self.context.set_default_timeout(TIMEOUT_MS)
        self.watch = Watch()
        self.answers: list[str] = []  # "POST /inbox/c/3/read 200", for a failure to show what the page did
        self.context.on("request", lambda request: self.watch.requests.append(request.url))
        self.context.on(
            "response",
            lambda answer: self.answers.append(f"{answer.request.method} {urlsplit(answer.url).path} {answer.status}"),
        )
        self.context.route(lambda url: not _is_loopback(url), lambda route: route.abort())
        self.page = self.context.new_page()
        self.page.on("console", lambda message: message.type == "error" and self.watch.errors.append(message.text))
        self.page.on("pageerror", lambda error: self.watch.errors.append(f"uncaught: {error}"))
        self.base_url = base_url
        self.page.goto(base_url + "/login")
        self.page.fill("input[name=email]", email)
        self.page.fill("input[name=password]", PASSWORD)
        with self.page.expect_navigation():
            self.page.click("button[type=submit]")
        expect(self.page.locator("#conversation-list")).to_be_visible()
        expect(self.page.locator("#live-state")).to_have_class(re.compile("live-ok"), timeout=LIVE_MS)

    def open(self, conversation_id: int) -> None:
        self.page.click(f"#conv-{conversation_id}")
        expect(self.page.locator(f".thread[data-conversation-id='{conversation_id}']")).to_be_visible()

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


def inbound(wa_id: str, wamid: str, text: str, name: str) -> bytes:
    return json.dumps(factories.text_message(wa_id, text, wamid=wamid, name=name, meta=factories.metadata())).encode()


@pytest.fixture
def agents(browser, live_server, app, fake_graph) -> Iterator[tuple[Agent, Agent]]:
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        accounts.create_user(session, "owner@example.com", "Olive Owner", "owner", PASSWORD, rounds=4)
        accounts.create_user(session, "ada@example.com", "Ada Agent", "agent", PASSWORD, rounds=4)
        accounts.create_user(session, "bob@example.com", "Bob Agent", "agent", PASSWORD, rounds=4)
        factories.whatsapp_connection(
            session, state.cipher, fake_graph.url, **{"whatsapp.read_receipts": "false", "onboarding.step": "done"}
        )
        session.add(
            Template(
                name="order_ready",
                language="en_GB",
                status="APPROVED",
                category="UTILITY",
                components=json.dumps(
                    [
                        {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
                        {"type": "BODY", "text": "Hello {{1}}, your order is ready for pickup at {{2}}."},
                    ]
                ),
            )
        )
    fake_graph.connect_webhook(live_server.url + "/webhooks/whatsapp", APP_SECRET)
    deliver_fixtures(state.database, *EVERY_TYPE)
    ada = Agent(browser, live_server.url, "ada@example.com")
    bob = Agent(browser, live_server.url, "bob@example.com")
    yield ada, bob
    ada.context.close()
    bob.context.close()


def conversation_of(app, wa_id: str) -> int:
    with app.extensions["sigdesk"].database.session() as session:
        contact = session.scalar(select(Contact).where(Contact.wa_id == wa_id))
        return session.scalar(select(Conversation.id).where(Conversation.contact_id == contact.id))


def test_two_agents_work_the_inbox_live(agents, app, fake_graph):
    ada, bob = agents
    showcase = conversation_of(app, "15551230001")

    # every message type in one thread, and the closed-window template composer
    expect(ada.page.locator(f"#conv-{showcase}")).to_be_visible()
    ada.screenshot("inbox-list")
    ada.open(showcase)
    thread = ada.page.locator("#messages")
    for words in (
        "Dora Delivery",
        "37.60 EUR",
        "Tapped a button",
        "Filled in a form",
        "cannot be shown",
        "From an ad",
        "The customer deleted this message",
        "Open in a map",
    ):
        expect(thread).to_contain_text(words)
    expect(ada.page.locator("#window-state")).to_contain_text("closed")
    ada.page.set_viewport_size({"width": DESKTOP["width"], "height": 4200})  # the whole thread, not only its end
    ada.screenshot("inbox-thread-every-type")
    ada.page.set_viewport_size(DESKTOP)
    ada.page.select_option("#template-select", label="order_ready (en_GB, utility)")
    ada.page.fill("#template-fields input[name='header-1']", "#1042")
    ada.page.fill("#template-fields input[name='body-1']", "Rosa")
    ada.page.fill("#template-fields input[name='body-2']", "5 pm")
    expect(ada.page.locator("#template-preview")).to_contain_text("Hello Rosa, your order is ready for pickup at 5 pm.")
    ada.screenshot("inbox-template-composer")

    # a signed inbound webhook appears live in both windows
    response = fake_graph.post_signed(
        inbound("15557654321", "wamid.LIVE.1", "Can I collect the blueberry tart today?", "Rosa Rossi")
    )
    assert response.status_code == 200, response.text
    rosa = conversation_of(app, "15557654321")
    for agent in (ada, bob):
        expect(agent.page.locator(f"#conv-{rosa}")).to_contain_text("blueberry tart", timeout=LIVE_MS)
    expect(ada.page.locator("#unread-total")).to_contain_text("unread")

    # Ada replies; the fake Graph API receives it; Bob, looking at the same thread, sees it arrive
    bob.open(rosa)
    ada.open(rosa)
    expect(ada.page.locator("#window-state")).to_contain_text("left")
    ada.page.fill("#composer-text", "Yes, until *6 pm*!")
    ada.page.click("#send-button")
    sent = wait_for(lambda: [body for body in fake_graph.sent if body.get("type") == "text"])
    assert sent[-1]["text"]["body"] == "Yes, until *6 pm*!" and sent[-1]["to"] == "15557654321"
    expect(bob.page.locator("#messages")).to_contain_text("Yes, until 6 pm!", timeout=LIVE_MS)

    # ticks advance as the fake posts statuses
    with app.extensions["sigdesk"].database.session() as session:
        reply = wait_for(
            lambda: (
                session.scalar(
                    select(Message).where(
                        Message.conversation_id == rosa, Message.direction == "out", Message.wamid.is_not(None)
                    )
                )
                or session.rollback()
            )
        )
    tick = ada.page.locator(f"#msg-{reply.id} .tick")
    assert fake_graph.send_status(reply.wamid, "delivered").status_code == 200
    expect(tick).to_have_class(re.compile("delivered"), timeout=LIVE_MS)
    assert fake_graph.send_status(reply.wamid, "read").status_code == 200
    expect(tick).to_have_class(re.compile("read"), timeout=LIVE_MS)
    expect(bob.page.locator(f"#msg-{reply.id} .tick")).to_have_class(re.compile("read"), timeout=LIVE_MS)

    # a private note reaches the team, never WhatsApp
    requests_before = len(fake_graph.requests)
    ada.page.click(".composer .tab[data-mode='note']")
    ada.page.fill("#composer-text", "She is a regular: add a free cookie")
    ada.page.click("#send-button")
    expect(ada.page.locator("#messages .msg.note")).to_contain_text("free cookie")
    expect(bob.page.locator("#messages .msg.note")).to_contain_text("free cookie", timeout=LIVE_MS)
    time.sleep(0.5)
    assert not any("free cookie" in json.dumps(request.body) for request in fake_graph.requests)
    assert len(fake_graph.requests) == requests_before

    # search finds the message and jumps to it
    bob.page.click(f"#conv-{showcase}")
    bob.page.fill("#search-input", "blueberry")
    hit = bob.page.locator(".search-results .message-hit").first
    expect(hit.locator("mark")).to_have_text(re.compile("blueberry", re.I))
    hit.click()
    expect(bob.page.locator(".msg.focus")).to_contain_text("blueberry tart")

    # keyboard: assign to me with "a", resolve with "r"
    ada.page.locator("#messages").click()
    ada.page.keyboard.press("a")
    expect(ada.page.locator("#panel #assign-select")).to_have_value(re.compile(r"\d+"), timeout=LIVE_MS)
    ada.page.keyboard.press("r")
    expect(ada.page.locator(f"#conv-{rosa}")).to_have_count(0, timeout=LIVE_MS)  # the list shows open ones
    ada.watch.assert_clean()
    # Bob had that thread open: once it is Ada's it leaves his view, live, with a word instead of an error
    expect(bob.page.locator("#thread")).to_contain_text("no longer visible to you", timeout=LIVE_MS)
    expect(bob.page.locator(f"#conv-{rosa}")).to_have_count(0, timeout=LIVE_MS)
    bob.watch.errors = [error for error in bob.watch.errors if "status of 404" not in error]
    bob.watch.assert_clean()
