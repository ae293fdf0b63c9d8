"""What the thread shows of what the team sent, as the inbox page renders it and the API lists it.

Messages are sent through the API or the inbox's own calls, the running worker sends them to the fake
Graph API, and the inbox page (thread, list, side panel) is read back as the browser reads it.
"""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from sigdesk.models import Conversation, Message, Template
from tests.inbox.helpers import deliver_fixtures
from tests.inbox.test_views import Browser
from tests.outbound.test_sending import first_conversation, inbound, post_webhook
from tests.waiting import wait_for

pytestmark = pytest.mark.database


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 300
ORDER_READY = [
    {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
    {"type": "BODY", "text": "Hello {{1}}, your order is ready for pickup at {{2}}."},
    {"type": "FOOTER", "text": "Rosa's Bakery_Main street"},
]
FILLED = "Order #1042\nHello Rosa, your order is ready for pickup at 5 pm.\nRosa's Bakery_Main street"


@pytest.fixture
def browser(app, api, client):
    """The owner's browser (signed in by `api`'s owner fixture) on a conversation the customer opened."""
    post_webhook(api.live_server.url, inbound("wamid.IN.THREAD"))
    return Browser(client)


@pytest.fixture
def conversation_id(api, browser) -> int:
    return first_conversation(api)["id"]


def sent(api, conversation_id: int, message_id: int) -> dict:
    """The message once the worker has sent it to the fake Graph API."""

    def done():
        items = api.get(f"/conversations/{conversation_id}/messages").json()["items"]
        found = next(item for item in items if item["id"] == message_id)
        return found if found["status"] == "sent" else None

    return wait_for(done)


def thread_html(browser, conversation_id: int) -> str:
    response = browser.get(f"/inbox/c/{conversation_id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def message_html(browser, conversation_id: int, message_id: int) -> str:
    html = browser.get(f"/inbox/c/{conversation_id}/messages/{message_id}").get_data(as_text=True)
    assert f'id="msg-{message_id}"' in html
    return html


def list_html(browser) -> str:
    return browser.get("/inbox/list").get_data(as_text=True)


def add_template(app, name: str = "order_ready") -> int:
    with app.extensions["sigdesk"].database.session() as session:
        template = Template(
            name=name, language="en_GB", status="APPROVED", category="UTILITY", components=json.dumps(ORDER_READY)
        )
        session.add(template)
        session.flush()
        return template.id


# --- templates -------------------------------------------------------------------------------------


def test_a_template_sent_from_the_inbox_shows_its_filled_text_in_the_thread_list_and_api(
    app, api, browser, conversation_id, fake_graph
):
    template_id = add_template(app)
    params = {"header": ["#1042"], "body": ["Rosa", "5 pm"]}
    queued = browser.post(f"/inbox/c/{conversation_id}/template", {"template_id": template_id, "params": params})
    assert queued.status_code == 202, queued.get_data(as_text=True)
    message = sent(api, conversation_id, queued.get_json()["message_id"])
    assert message["text"] == FILLED

    # the template is synced again later with other words: the thread keeps what the customer read
    with app.extensions["sigdesk"].database.session() as session:
        session.get(Template, template_id).components = json.dumps([{"type": "BODY", "text": "Changed {{1}}"}])
    html = message_html(browser, conversation_id, message["id"])
    assert "Template order_ready" in html
    assert "Hello Rosa, your order is ready for pickup at 5 pm." in html and "Order #1042" in html
    assert "Rosa&#39;s Bakery_Main street" in html
    assert "[template" not in html
    assert "Order #1042 Hello Rosa, your order is ready" in list_html(browser)


def test_a_template_sent_through_the_api_shows_its_filled_text(app, api, browser, conversation_id):
    add_template(app)
    template = {
        "name": "order_ready",
        "language": {"code": "en_GB"},
        "components": [
            {"type": "header", "parameters": [{"type": "text", "text": "#1042"}]},
            {"type": "body", "parameters": [{"type": "text", "text": "Rosa"}, {"type": "text", "text": "5 pm"}]},
        ],
    }
    response = api.post(f"/conversations/{conversation_id}/messages", json={"type": "template", "template": template})
    assert response.status_code == 202, response.text
    assert response.json()["text"] == FILLED
    html = message_html(browser, conversation_id, sent(api, conversation_id, response.json()["id"])["id"])
    assert "Hello Rosa, your order is ready for pickup at 5 pm." in html


def test_a_template_name_keeps_its_underscores_where_only_the_name_is_known(app, api, browser, conversation_id):
    template_id = add_template(app, "order_ready_v2")
    params = {"header": ["#7"], "body": ["Rosa", "5 pm"]}
    queued = browser.post(f"/inbox/c/{conversation_id}/template", {"template_id": template_id, "params": params})
    message_id = queued.get_json()["message_id"]
    sent(api, conversation_id, message_id)
    with app.extensions["sigdesk"].database.session() as session:
        session.delete(session.get(Template, template_id))  # deleted at Meta, gone at the next sync
        session.get(Message, message_id).text = "[template order_ready_v2]"  # as SigDesk stored it before
    html = message_html(browser, conversation_id, message_id)
    assert "Template order_ready_v2" in html
    assert "[template order_ready_v2]" in list_html(browser)


# --- interactive messages ----------------------------------------------------------------------------


def test_a_sent_button_message_shows_its_header_footer_and_buttons(api, browser, conversation_id):
    interactive = {
        "type": "button",
        "header": {"type": "text", "text": "Your order_42"},
        "body": {"text": "Shall we deliver it?"},
        "footer": {"text": "Reply within a day"},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": "yes", "title": "Yes please"}},
                {"type": "reply", "reply": {"id": "no", "title": "I will collect"}},
            ]
        },
    }
    response = api.post(
        f"/conversations/{conversation_id}/messages", json={"type": "interactive", "interactive": interactive}
    )
    assert response.status_code == 202, response.text
    html = message_html(browser, conversation_id, sent(api, conversation_id, response.json()["id"])["id"])
    assert '<div class="msg-header">Your order_42</div>' in html
    assert "Shall we deliver it?" in html
    assert "Reply within a day" in html
    assert '<span class="option">Yes please</span>' in html and '<span class="option">I will collect</span>' in html


def test_a_sent_list_message_shows_its_button_sections_and_rows(api, browser, conversation_id):
    interactive = {
        "type": "list",
        "header": {"type": "text", "text": "Today's cakes"},
        "body": {"text": "Which one would you like?"},
        "footer": {"text": "Baked this morning"},
        "action": {
            "button": "See the cakes",
            "sections": [
                {
                    "title": "Tarts",
                    "rows": [
                        {"id": "t1", "title": "Blueberry tart", "description": "Whole, 8 slices"},
                        {"id": "t2", "title": "Lemon tart"},
                    ],
                },
                {"title": "Cakes", "rows": [{"id": "c1", "title": "Carrot cake", "description": "Vegan"}]},
            ],
        },
    }
    response = api.post(
        f"/conversations/{conversation_id}/messages", json={"type": "interactive", "interactive": interactive}
    )
    assert response.status_code == 202, response.text
    html = message_html(browser, conversation_id, sent(api, conversation_id, response.json()["id"])["id"])
    for words in (
        "Today&#39;s cakes",
        "Which one would you like?",
        "Baked this morning",
        "☰ See the cakes",
        "Tarts",
        "Blueberry tart",
        "Whole, 8 slices",
        "Lemon tart",
        "Cakes",
        "Carrot cake",
        "Vegan",
    ):
        assert words in html, words
    assert html.index("Tarts") < html.index("Blueberry tart") < html.index("Cakes") < html.index("Carrot cake")


# --- media uploaded through the API ----------------------------------------------------------------


def test_an_image_uploaded_through_the_api_shows_in_the_thread_from_our_copy(api, browser, conversation_id):
    uploaded = api.post("/media", files={"file": ("cake.png", PNG, "image/png")}, data={"type": "image"})
    assert uploaded.status_code == 201, uploaded.text
    response = api.post(
        f"/conversations/{conversation_id}/messages",
        json={"type": "image", "image": {"id": uploaded.json()["id"], "caption": "Your cake"}},
    )
    assert response.status_code == 202, response.text
    message = sent(api, conversation_id, response.json()["id"])
    assert message["media"]["state"] == "ready" and message["media"]["url"] == f"/media/{message['id']}"
    html = message_html(browser, conversation_id, message["id"])
    assert "sent from another device" not in html
    assert re.search(rf'<img class="media image" src="/media/{message["id"]}"', html)
    image = browser.get(f"/media/{message['id']}")
    assert image.status_code == 200 and image.data == PNG and image.headers["Content-Type"] == "image/png"


def test_a_document_uploaded_through_the_api_keeps_the_name_it_was_sent_with(api, browser, conversation_id):
    pdf = b"%PDF-1.7\n" + b"1 0 obj\n" * 40
    uploaded = api.post("/media", files={"file": ("scan.pdf", pdf, "application/pdf")}, data={"type": "document"})
    assert uploaded.status_code == 201, uploaded.text
    response = api.post(
        f"/conversations/{conversation_id}/messages",
        json={"type": "document", "document": {"id": uploaded.json()["id"], "filename": "invoice_42.pdf"}},
    )
    message = sent(api, conversation_id, response.json()["id"])
    html = message_html(browser, conversation_id, message["id"])
    assert "invoice_42.pdf" in html and "sent from another device" not in html
    assert browser.get(f"/media/{message['id']}").data == pdf


# --- the side panel ----------------------------------------------------------------------------------


def test_the_panel_counts_messages_not_edits_deletions_or_reactions(app, owner, client):
    database = app.extensions["sigdesk"].database
    deliver_fixtures(database, "message_text", "message_image", "message_edit", "message_revoke", "message_reaction")
    browser = Browser(client)
    with database.session() as session:
        conversation_id = session.scalar(select(Conversation.id))
    thread = thread_html(browser, conversation_id)
    shown = len(re.findall(r'class="msg in[^"]*" id="msg-\d+"', thread))
    panel = browser.get(f"/inbox/c/{conversation_id}/panel").get_data(as_text=True)
    assert shown == 2
    assert re.search(r"<dt>Messages</dt><dd>2</dd>", panel)
