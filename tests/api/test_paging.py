"""Every API list pages by keyset cursor, in the order it declares."""

from datetime import timedelta

import pytest

from sigdesk.auth import services as accounts
from sigdesk.db import utcnow
from sigdesk.models import Contact, Conversation, Message, User


def _token(app, email):
    with app.extensions["sigdesk"].database.session() as session:
        return accounts.create_api_token(session, session.query(User).filter_by(email=email).one(), "tests")


def _all_pages(client, path, token, limit=1):
    seen, cursor = [], ""
    for _ in range(20):
        body = client.get(
            f"{path}?limit={limit}&cursor={cursor}", headers={"Authorization": f"Bearer {token}"}
        ).get_json()
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("paging did not end")


@pytest.mark.database
def test_conversations_page_in_activity_order_even_when_ids_disagree(app, owner):
    now = utcnow()
    with app.extensions["sigdesk"].database.session() as session:
        ids = []
        for n, minutes_ago in enumerate((1, 30, 20)):  # the lowest id is the most recent
            contact = Contact(wa_id=f"1555000{n}")
            session.add(contact)
            session.flush()
            conversation = Conversation(contact_id=contact.id, last_message_at=now - timedelta(minutes=minutes_ago))
            session.add(conversation)
            session.flush()
            ids.append(conversation.id)
    assert _all_pages(app.test_client(), "/api/v1/conversations", _token(app, owner.email)) == [ids[0], ids[2], ids[1]]


@pytest.mark.database
def test_messages_page_newest_first_by_timestamp_then_id(app, owner):
    now = utcnow().replace(microsecond=0)
    with app.extensions["sigdesk"].database.session() as session:
        contact = Contact(wa_id="15550001")
        session.add(contact)
        session.flush()
        conversation = Conversation(contact_id=contact.id, last_message_at=now)
        session.add(conversation)
        session.flush()
        ids = []
        for minutes_ago in (5, 0, 5, 10):  # two share a timestamp: the id breaks the tie
            message = Message(
                conversation_id=conversation.id,
                contact_id=contact.id,
                direction="in",
                type="text",
                text="hi",
                timestamp=now - timedelta(minutes=minutes_ago),
            )
            session.add(message)
            session.flush()
            ids.append(message.id)
        conversation_id = conversation.id
    seen = _all_pages(app.test_client(), f"/api/v1/conversations/{conversation_id}/messages", _token(app, owner.email))
    assert seen == [ids[1], ids[2], ids[0], ids[3]]


def test_a_cursor_sigdesk_did_not_give_out_is_400_naming_cursor(client, app, owner):
    response = client.get(
        "/api/v1/templates?cursor=garbage", headers={"Authorization": f"Bearer {_token(app, owner.email)}"}
    )
    assert response.status_code == 400
    assert response.get_json()["field"] == "cursor"


def test_an_empty_list_has_no_next_cursor(client, app, owner):
    body = client.get("/api/v1/templates", headers={"Authorization": f"Bearer {_token(app, owner.email)}"}).get_json()
    assert body == {"items": [], "next_cursor": None}
