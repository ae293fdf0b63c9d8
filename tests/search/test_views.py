"""GET /api/v1/search: JSON for the search box and API clients; bad input gets a 4xx with a message."""

from __future__ import annotations

import pytest

from sigdesk.auth import services as accounts
from sigdesk.models import Contact, Reaction, User
from tests.search.test_services import add_conversation

pytestmark = pytest.mark.database


@pytest.fixture
def signed_in(app, auth, owner):
    with app.extensions["sigdesk"].database.session() as session:
        add_conversation(session, "Zoë Müller", "4915112345678", ["Is my <b>order</b> ready?"])
    return owner


def test_the_search_box_gets_messages_and_contacts_as_json(client, signed_in):
    response = client.get("/api/v1/search", query_string={"q": "order"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["query"] == "order"
    [hit] = body["messages"]
    assert hit["snippet_html"] == "Is my &lt;b&gt;<mark>order</mark>&lt;/b&gt; ready?"
    assert body["contacts"] == []
    assert client.get("/api/v1/search?q=zoe").get_json()["contacts"][0]["name"] == "Zoë Müller"


def test_a_message_hit_carries_the_message_exactly_as_the_api_lists_it(app, client, signed_in):
    with app.extensions["sigdesk"].database.session() as session:
        contact = session.query(Contact).filter_by(wa_id="4915112345678").one()
        session.add(Reaction(target_wamid="wamid.4915112345678.0", contact_id=contact.id, emoji="👍"))
    [hit] = client.get("/api/v1/search", query_string={"q": "order"}).get_json()["messages"]
    listed = client.get(f"/api/v1/conversations/{hit['conversation_id']}/messages")
    assert listed.status_code == 200, listed.get_data(as_text=True)
    [message] = [item for item in listed.get_json()["items"] if item["id"] == hit["message_id"]]
    assert hit["message"] == message
    assert message["reactions"] == ["👍"] and message["text"] == "Is my <b>order</b> ready?"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"q": ""}, "Type something"),
        ({}, "Type something"),
        ({"q": "x" * 201}, "too long"),
        ({"q": "order", "limit": "0"}, "'limit'"),
        ({"q": "order", "limit": "abc"}, "'limit'"),
        ({"q": "order", "limit": "51"}, "'limit'"),
    ],
)
def test_bad_queries_get_400_with_a_reason(client, signed_in, query, message):
    response = client.get("/api/v1/search", query_string=query)
    assert response.status_code == 400
    assert message in response.get_json()["error"]


def test_search_needs_a_signed_in_user_or_a_token(app, client, signed_in, auth):
    auth.logout()
    assert client.get("/api/v1/search?q=order").status_code == 401
    with app.extensions["sigdesk"].database.session() as session:
        owner = session.query(User).filter_by(email=signed_in.email).one()
        token = accounts.create_api_token(session, owner, "script")
    response = client.get("/api/v1/search?q=order", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and len(response.get_json()["messages"]) == 1


def test_a_query_of_separator_characters_is_searched_as_the_api_document_says_not_refused(client, owner):
    """JSON Schema's \\S counts U+001C as content, where Python's strip() would not; SigDesk follows the document."""
    response = client.get("/api/v1/search", query_string={"q": "\x1c\x1c"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["messages"] == []
    assert client.get("/api/v1/search", query_string={"q": " \u3000\t"}).status_code == 400
