"""Duplicate suggestions (same email, same normalised number, same name whatever its case, accents and word
order), dismissing a pair, the merge preview, and search finding moved messages under the kept contact."""

from __future__ import annotations

import pytest

from sigdesk.actor import Actor
from sigdesk.errors import UserError
from sigdesk.merge import commands, services
from sigdesk.merge.services import MAX_GROUP, name_key, phone_key
from sigdesk.models import Contact
from sigdesk.search.services import search
from tests import factories

pytestmark = pytest.mark.database


@pytest.fixture
def database(app):
    return app.extensions["sigdesk"].database


def admin(session) -> Actor:
    return Actor(factories.user(session, "admin"), "cli")


def pairs_of(session) -> dict[tuple[int, int], list[str]]:
    found = services.suggestions(session, 200)
    return {(pair.first.id, pair.second.id): pair.reasons for pair in found.items}


def test_names_compare_whatever_their_case_accents_spacing_and_word_order():
    assert name_key("  José   GARCÍA ") == name_key("garcia jose") == "garcia jose"
    assert name_key("Müller, Anna") == name_key("anna muller")
    assert name_key("") is None and name_key("   ") is None and name_key(None) is None


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("5511987654321", "551187654321"),  # Brazil's ninth digit
        ("5215512345678", "525512345678"),  # Mexico's 521
        ("5491123456789", "541123456789"),  # Argentina's 549
        ("+49 170 1234567", "491701234567"),  # written with a + and spaces (an old import)
        ("00491701234567", "491701234567"),
    ],
)
def test_numbers_written_two_ways_have_one_key(one, other):
    assert phone_key(one) == phone_key(other)


def test_a_national_number_is_read_in_the_default_country():
    assert phone_key("0170 1234567", "DE") == phone_key("491701234567")
    assert phone_key("551187654321") != phone_key("551133334444")


def test_pairs_with_the_same_email_number_or_name_are_suggested_with_why(database):
    with database.session() as session:
        a = factories.contact(session, "5511987654321", "Ana Souza", email="ana@example.com")
        b = factories.contact(session, "551187654321", "ana  SOUZA")
        c = factories.contact(session, name="Someone Else", email="ana@example.com")
        d = factories.contact(session, name="Other Person", display_name="José García")
        e = factories.contact(session, name="garcia jose")
        factories.contact(session, name="Unrelated")
        session.commit()
        found = pairs_of(session)
    assert found == {
        (a.id, b.id): ["phone", "name"],
        (a.id, c.id): ["email"],
        (d.id, e.id): ["name"],
    }
    assert list(found)[-1] == (d.id, e.id), "a shared email or number comes before a name alone"


def test_a_name_too_common_is_not_suggested(database):
    with database.session() as session:
        for _ in range(MAX_GROUP + 1):
            factories.contact(session, name="Maria")
        session.commit()
        assert pairs_of(session) == {}


def test_a_dismissed_pair_is_no_longer_suggested(app, database):
    with database.session() as session:
        a = factories.contact(session, name="Ana Souza")
        b = factories.contact(session, name="Ana Souza")
        c = factories.contact(session, name="Ana Souza")
        actor = admin(session)
        assert commands.dismiss(session, actor, b.id, a.id) is True
        assert commands.dismiss(session, actor, a.id, b.id) is False
        session.commit()
        assert set(pairs_of(session)) == {(a.id, c.id), (b.id, c.id)}
        with pytest.raises(UserError) as refused:
            commands.dismiss(session, actor, a.id, a.id)
        assert refused.value.status == 422 and refused.value.field == "second_id"
        with pytest.raises(UserError) as unknown:
            commands.dismiss(session, actor, a.id, 999_999)
        assert unknown.value.status == 404 and unknown.value.field == "second_id"


def test_suggestions_page_with_a_cursor(database):
    with database.session() as session:
        ids = [factories.contact(session, name="Pat Lee").id for _ in range(4)]  # six pairs
        session.commit()
        seen, cursor = [], None
        while True:
            found = services.suggestions(session, 4, cursor)
            seen += [(pair.first.id, pair.second.id) for pair in found.items]
            cursor = found.next_cursor
            if cursor is None:
                break
        assert len(seen) == 6 and len(set(seen)) == 6 and set(seen) <= {(x, y) for x in ids for y in ids if x < y}
        for bad in ("nonsense", "x" * 300, services.PairCursor(0, 1, 2).encode()[:-2]):
            with pytest.raises(UserError) as refused:
                services.suggestions(session, 4, bad)
            assert refused.value.field == "cursor"


def test_the_preview_shows_both_values_conflicts_defaults_and_what_moves(database):
    with database.session() as session:
        kept = factories.contact(session, "491701234567", "Jo", email="jo@example.com", company=None, city="Bonn")
        merged = factories.contact(session, "491707654321", "Jo", email="jo@work.example", company="ACME", city="Bonn")
        conversation = factories.conversation(session, merged)
        factories.message(session, conversation)
        factories.note(session, conversation)
        preview = services.preview(session, kept.id, merged.id)
    fields = {choice.field: choice for choice in preview.fields}
    email, company, city = fields["email"], fields["company"], fields["city"]
    assert (email.kept, email.merged, email.conflict, email.default) == (
        "jo@example.com",
        "jo@work.example",
        True,
        "keep",
    )
    assert (company.kept, company.merged, company.conflict, company.default) == (None, "ACME", False, "merge")
    assert (city.conflict, city.default) == (False, "keep")
    assert (preview.moves.conversations, preview.moves.messages, preview.moves.notes) == (1, 1, 1)
    assert any("+49 170 7654321" in remark and "new contact" in remark for remark in preview.remarks)


def test_search_finds_a_moved_message_under_the_kept_contact(database):
    with database.session() as session:
        owner = factories.user(session, "owner")
        kept, merged = factories.contact(session, name="Kept Person"), factories.contact(session, name="Gone Person")
        factories.message(session, factories.conversation(session, kept), text="hello there")
        factories.message(session, factories.conversation(session, merged), text="wombat delivery tomorrow")
        session.commit()
        commands.merge_contacts(session, Actor(owner, "cli"), kept.id, merged.id)
        session.commit()
        owner = session.get(type(owner), owner.id)
        hits = search(session, owner, "wombat")
        assert [hit["contact_name"] for hit in hits["messages"]] == ["Kept Person"]
        assert search(session, owner, "Gone")["contacts"] == []
        assert session.get(Contact, merged.id) is None
