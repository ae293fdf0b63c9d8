"""What a message is found by, on the real database: its current text (once, however often it was edited),
words of Chinese and Japanese inside a sentence, the names on shared contact cards and document file names."""

from __future__ import annotations

import json

import pytest

from sigdesk.inbound.services import Incoming, store_and_apply
from sigdesk.models import User
from sigdesk.search import fts
from sigdesk.search import services as search
from tests import factories
from tests.inbox.helpers import FIXTURES, deliver, deliver_fixtures
from tests.search.test_services import add_conversation

pytestmark = pytest.mark.database


@pytest.fixture
def db(app):
    return app.extensions["sigdesk"].database


@pytest.fixture
def owner_user(db):
    with db.session() as session:
        return factories.user(session, "owner", "owner@example.com", "Owner")


def run(db, who: User, query: str):
    with db.session(write=False) as session:
        return search.search(session, session.get(User, who.id), query)


def snippets(found) -> list[str]:
    return [hit["snippet_html"] for hit in found["messages"]]


def test_an_edited_message_is_one_hit_with_its_current_text(db, owner_user):
    deliver_fixtures(db, "message_text", "message_edit")
    assert snippets(run(db, owner_user, "tomorrow")) == ["Hello, is the shop open <mark>tomorrow</mark>?"]
    assert snippets(run(db, owner_user, "shop")) == ["Hello, is the <mark>shop</mark> open tomorrow?"]
    assert run(db, owner_user, "today")["messages"] == []


CHINESE = "您好，我想订购两件红色的衬衫，请问什么时候可以发货？"
JAPANESE = "明日の午後に東京駅で受け取りたいです"


@pytest.fixture
def sentences(db):
    with db.session() as session:
        add_conversation(session, "王小明", "8613800000001", [CHINESE, "红色 invoice 2024 please"])
        add_conversation(session, "佐藤花子", "8190000000002", [JAPANESE])
        add_conversation(session, "Latin Only", "4900000000003", ["the red shirt, please"])


@pytest.mark.parametrize(
    ("query", "marked"),
    [
        ("衬衫", "<mark>衬衫</mark>"),  # two characters: shorter than a trigram
        ("红色的衬衫", "<mark>红色的衬衫</mark>"),
        ("什么时候", "<mark>什么时候</mark>"),
        ("发", "<mark>发</mark>"),
    ],
)
def test_a_chinese_word_inside_a_sentence_is_found(db, owner_user, sentences, query, marked):
    [hit] = run(db, owner_user, query)["messages"]
    assert hit["contact_name"] == "王小明" and marked in hit["snippet_html"]


@pytest.mark.parametrize("query", ["東京駅", "東京", "受け取り", "午後 東京駅"])
def test_a_japanese_word_inside_a_sentence_is_found(db, owner_user, sentences, query):
    [hit] = run(db, owner_user, query)["messages"]
    assert hit["contact_name"] == "佐藤花子"


def test_chinese_and_latin_words_together_and_contact_names_by_their_part(db, owner_user, sentences):
    assert snippets(run(db, owner_user, "红色 invo")) == ["<mark>红色</mark> <mark>invoice</mark> 2024 please"]
    assert [hit["name"] for hit in run(db, owner_user, "小明")["contacts"]] == ["王小明"]
    assert [hit["name"] for hit in run(db, owner_user, "花子")["contacts"]] == ["佐藤花子"]
    assert run(db, owner_user, "大阪")["messages"] == [] and run(db, owner_user, "東京タワー")["messages"] == []


def test_latin_words_keep_matching_at_the_start_of_words_only(db, owner_user, sentences):
    assert snippets(run(db, owner_user, "shirt")) == ["the red <mark>shirt</mark>, please"]
    assert run(db, owner_user, "hirt")["messages"] == []


def test_the_names_on_a_shared_contact_card_are_found(db, owner_user):
    deliver_fixtures(db, "message_contacts")
    [hit] = run(db, owner_user, "dora delivery")["messages"]
    assert hit["snippet_html"] == "<mark>Dora</mark> <mark>Delivery</mark>"
    assert hit["message"]["type"] == "contacts"


def test_a_document_is_found_by_its_file_name(db, owner_user):
    deliver(db, (FIXTURES / "message_document.json").read_bytes())
    [hit] = run(db, owner_user, "invoice-2024-11.pdf")["messages"]
    assert hit["snippet_html"] == "<mark>invoice</mark>-<mark>2024</mark>-<mark>11</mark>.<mark>pdf</mark>"
    assert [h["message_id"] for h in run(db, owner_user, "invoice")["messages"]] == [hit["message_id"]]


def test_words_of_older_messages_are_found_through_the_index_as_in_the_newest(app, db, owner_user, monkeypatch):
    """MariaDB scans the newest messages with LIKE and finds older ones through its n-gram index, which an
    outbox consumer keeps up to date from the message events (migration 0009 fills it for older rows)."""
    from sigdesk.search.services import MySQLSearch

    app.extensions["sigdesk"].worker.run_once()  # the outbox's consumers start reading here
    said = [
        ("8613800000011", CHINESE, "王小明"),
        ("8190000000012", JAPANESE, "佐藤花子"),
        ("8190000000013", "東京タワーは高い", "田中"),
    ]
    with db.session() as session:  # as the webhook's intake stores and applies them, with their events
        store_and_apply(
            session,
            [
                Incoming(
                    json.dumps(factories.text_message(wa_id, body, name=name, meta=factories.metadata())).encode(), None
                )
                for wa_id, body, name in said
            ],
        )
    app.extensions["sigdesk"].worker.run_once()
    queries = [
        "衬衫",
        "红色的衬衫",
        "发",
        "東京駅",
        "東京",
        "京",
        "受け取り",
        "午後 東京駅",
        "タワー",
        "大阪",
        "東京タワーは高くない",
    ]
    recent = {query: run(db, owner_user, query) for query in queries}
    assert [len(recent[query]["messages"]) for query in queries] == [1, 1, 1, 1, 2, 2, 1, 1, 1, 0, 0]
    monkeypatch.setattr(MySQLSearch, "RECENT_WINDOW", 0)
    for query in queries:
        assert run(db, owner_user, query) == recent[query], query


def test_json_keys_of_cards_and_templates_are_not_words_and_a_real_hit_behind_them_is_found(
    db, owner_user, monkeypatch
):
    """Card and template messages keep JSON with keys such as "name", "type" and "text": those are no words of
    theirs. A search finds the older message that does say them, however many such messages are newer."""
    from sigdesk.search.services import MySQLSearch

    with db.session() as session:
        conversation = add_conversation(session, "Nia Noise", "4900000000031", ["what type of name would you like"])
        card = {"contacts": {"cards": [{"name": {"formatted_name": "Carl Card", "first_name": "Carl"}, "urls": []}]}}
        template = {"template": {"name": "order_ready", "components": [{"type": "body", "parameters": []}]}}
        for _ in range(15):
            factories.message(session, conversation, type="contacts", details=json.dumps(card))
            factories.message(
                session, conversation, "out", "template", text="Your order is ready", details=json.dumps(template)
            )
    with db.engine.begin() as connection:
        fts.rebuild(connection)  # MariaDB: the card names reach their index (as the outbox consumer writes them)

    def found(query: str) -> list[str]:
        with db.session(write=False) as session:
            hits = search.search(session, session.get(User, owner_user.id), query, limit=3)["messages"]
        return [hit["snippet_html"] for hit in hits]

    for window in (MySQLSearch.RECENT_WINDOW, 0):  # MariaDB: the scan of the newest messages, then the index
        monkeypatch.setattr(MySQLSearch, "RECENT_WINDOW", window)
        assert found("name") == ["what type of <mark>name</mark> would you like"], window
        assert found("type") == ["what <mark>type</mark> of name would you like"], window
        assert found("formatted") == [] and found("components") == [], window
        assert found("carl card") == ["<mark>Carl</mark> <mark>Card</mark>"] * 3, window
