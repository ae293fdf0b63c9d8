"""Full-text search on the real database (SQLite FTS5, MariaDB FULLTEXT): what it finds, how it highlights, who sees it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from sigdesk.db import utcnow
from sigdesk.models import Contact, Conversation, Message, User
from sigdesk.search import services as search
from sigdesk.search.services import snippet_html
from tests import factories

pytestmark = pytest.mark.database


def add_conversation(
    session, name: str | None, wa_id: str, texts: list[str], assignee: User | None = None
) -> Conversation:
    conversation = factories.conversation(
        session,
        factories.contact(session, wa_id, name),
        assignee_id=assignee.id if assignee else None,
        last_message_at=utcnow(),
    )
    for n, body in enumerate(texts):
        factories.message(
            session, conversation, text=body, wamid=f"wamid.{wa_id}.{n}", timestamp=utcnow() + timedelta(seconds=n)
        )
    return conversation


@pytest.fixture
def db(app):
    return app.extensions["sigdesk"].database


@pytest.fixture
def team(db):
    with db.session() as session:
        people = {
            role: factories.user(session, role.rstrip("2"), f"{role}@example.com", role.title())
            for role in ("owner", "admin", "agent", "agent2")
        }
    return people


@pytest.fixture
def inbox(db, team):
    with db.session() as session:
        add_conversation(
            session, "Zoë Müller", "4915112345678", ["Hello, is my order 1042 ready?", "Thanks, see you at the café"]
        )
        add_conversation(
            session,
            "Peter Parker",
            "4917099887766",
            ["<script>alert('x')</script> spider order"],
            assignee=team["agent"],
        )
        add_conversation(
            session, "Olga Secret", "4930111222333", ["secret order for the other agent"], assignee=team["agent2"]
        )


def run(db, who: User, query: str, **kwargs):
    with db.session(write=False) as session:
        return search.search(session, session.get(User, who.id), query, **kwargs)


def texts(found) -> list[str]:
    return [hit["snippet_html"] for hit in found["messages"]]


def test_finds_message_text_newest_first_with_the_hit_marked(db, team, inbox):
    found = run(db, team["owner"], "order")
    assert len(found["messages"]) == 3
    assert "<mark>order</mark>" in found["messages"][-1]["snippet_html"]
    first = found["messages"][0]
    assert set(first) == {"message_id", "conversation_id", "contact_name", "snippet_html", "timestamp", "message"}
    assert first["contact_name"] == "Olga Secret"
    message = first["message"]
    assert (message["id"], message["conversation_id"]) == (first["message_id"], first["conversation_id"])
    assert (
        message["text"] == "secret order for the other agent" and message["timestamp"].isoformat() == first["timestamp"]
    )


def test_the_last_word_matches_as_a_prefix_and_every_word_is_required(db, team, inbox):
    assert texts(run(db, team["owner"], "1042 ord")) == ["Hello, is my <mark>order</mark> <mark>1042</mark> ready?"]
    assert run(db, team["owner"], "order nonexistentword")["messages"] == []


def test_accents_and_case_do_not_matter(db, team, inbox):
    assert texts(run(db, team["owner"], "CAFE")) == ["Thanks, see you at the <mark>café</mark>"]
    assert [hit["name"] for hit in run(db, team["owner"], "zoe muller")["contacts"]] == ["Zoë Müller"]


def test_html_in_a_message_comes_back_escaped(db, team, inbox):
    [snippet] = texts(run(db, team["owner"], "spider"))
    assert "<script>" not in snippet
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; <mark>spider</mark> order" == snippet


def test_finds_contacts_by_name_and_by_any_part_of_their_number(db, team, inbox):
    found = run(db, team["owner"], "peter")
    assert [(hit["name"], hit["wa_id"]) for hit in found["contacts"]] == [("Peter Parker", "4917099887766")]
    assert set(found["contacts"][0]) == {"contact_id", "conversation_id", "name", "wa_id", "contact"}
    assert [hit["name"] for hit in run(db, team["owner"], "+49 170 998")["contacts"]] == ["Peter Parker"]
    assert [hit["name"] for hit in run(db, team["owner"], "4915112345678")["contacts"]] == ["Zoë Müller"]


SYNTAX = [
    '"',
    '""',
    "*",
    "-",
    "-order",
    "NEAR(order 1042)",
    "order NEAR",
    "(",
    ")",
    "order)",
    "order OR",
    "AND",
    "NOT",
    '"unbalanced',
    "^order",
    "messages_fts:order",
    "text:order",
    "+-~<>@",
    "'; DROP TABLE messages; --",
    "%",
    "_",
    "o*r*d",
    "\\",
    "order\x00",
]


def test_search_syntax_typed_by_a_person_is_taken_as_plain_words(db, team, inbox):
    for query in SYNTAX:
        found = run(db, team["owner"], query)
        assert isinstance(found["messages"], list) and isinstance(found["contacts"], list), query
    assert len(run(db, team["owner"], "order)")["messages"]) == 3
    assert run(db, team["owner"], "%")["messages"] == [] and run(db, team["owner"], "_")["messages"] == []


def test_quotes_and_operators_around_words_still_find_them(db, team, inbox):
    assert len(run(db, team["owner"], '"order" -NEAR(*')["messages"]) == 0  # every word is required, NEAR too
    assert len(run(db, team["owner"], '("order")')["messages"]) == 3


def test_short_and_common_words_are_found_too(db, team, inbox):
    # MariaDB indexes neither words under 3 letters nor its stopwords
    assert texts(run(db, team["owner"], "is my")) == ["Hello, <mark>is</mark> <mark>my</mark> order 1042 ready?"]
    assert len(run(db, team["owner"], "the")["messages"]) == 2


def test_an_agent_finds_only_their_own_and_unassigned_conversations(db, team, inbox):
    found = run(db, team["agent"], "order")
    assert sorted(hit["contact_name"] for hit in found["messages"]) == ["Peter Parker", "Zoë Müller"]
    assert run(db, team["agent"], "olga")["contacts"] == []
    assert run(db, team["agent"], "4930111")["contacts"] == []
    assert len(run(db, team["admin"], "order")["messages"]) == 3


def test_the_setting_that_widens_what_agents_see_widens_search(app, db, team, inbox):
    from sigdesk.conversations.services import AGENTS_SEE_ALL
    from sigdesk.settings import services as settings

    with db.session() as session:
        settings.set_value(session, app.extensions["sigdesk"].cipher, AGENTS_SEE_ALL, "true")
    assert [hit["name"] for hit in run(db, team["agent"], "olga")["contacts"]] == ["Olga Secret"]


def test_edited_deleted_and_revoked_messages_leave_the_index(db, team, inbox):
    with db.session() as session:
        zoe = session.scalar(select(Message).where(Message.text.like("Hello%")))
        zoe.text = "Hello, where is my parcel?"
        peter = session.scalar(select(Message).where(Message.text.like("%spider%")))
        session.delete(peter)
        olga = session.scalar(select(Message).where(Message.text.like("secret%")))
        olga.revoked_at = utcnow()
    assert run(db, team["owner"], "order")["messages"] == []
    assert texts(run(db, team["owner"], "parcel")) == ["Hello, where is my <mark>parcel</mark>?"]


def test_renamed_contacts_are_found_by_their_new_name(db, team, inbox):
    with db.session() as session:
        contact = session.scalar(select(Contact).where(Contact.profile_name == "Peter Parker"))
        contact.display_name = "Spidey"
    assert [hit["name"] for hit in run(db, team["owner"], "spidey")["contacts"]] == ["Spidey"]
    assert [hit["name"] for hit in run(db, team["owner"], "parker")["contacts"]] == ["Spidey"]


def test_the_limit_caps_each_list(db, team):
    with db.session() as session:
        add_conversation(session, "Many", "491", [f"invoice number {n}" for n in range(30)])
    assert len(run(db, team["owner"], "invoice", limit=5)["messages"]) == 5


@pytest.mark.parametrize("query", ["", "   ", "x" * 201])
def test_empty_or_overlong_queries_are_refused(db, team, query):
    with pytest.raises(search.InvalidQuery):
        run(db, team["owner"], query)


def test_snippets_cut_long_texts_around_the_first_hit():
    body = "word " * 100 + "needle in the middle " + "word " * 100
    snippet = snippet_html(body, ["needle"])
    assert snippet.startswith("…") and snippet.endswith("…") and "<mark>needle</mark>" in snippet
    assert len(snippet) < 250


def test_the_scan_of_recent_messages_and_the_index_give_the_same_hits(db, team, inbox, monkeypatch):
    """MySQL looks at the newest messages first (see MySQLSearch); the FULLTEXT index must agree with it."""
    from sigdesk.search.services import MySQLSearch

    with db.session() as session:
        add_conversation(session, "Noise", "4900", [f"unrelated reorder chatter {n}" for n in range(5)])
    queries = ["order", "ord", "1042 ord", "CAFE", "is my", "the", "spider", "parcel", "secret order", "zzz"]
    recent = {query: run(db, team["owner"], query) for query in queries}
    monkeypatch.setattr(MySQLSearch, "RECENT_WINDOW", 0)
    for query in queries:
        assert run(db, team["owner"], query) == recent[query], query
