"""The inbox's rules, on real databases: what each role sees, filters, paging, threads, snoozes, labels, notes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from sigdesk.db import utcnow
from sigdesk.canned import services as canned
from sigdesk.conversations import actions
from sigdesk.conversations.commands import SnoozeWaker
from sigdesk.errors import UserError
from sigdesk.inbox import services
from sigdesk.labels import services as labels
from sigdesk.inbox.services import Cursor, Filters, InboxError
from sigdesk.models import Conversation, Message, Note
from sigdesk.settings import services as settings
from tests.inbox.helpers import assign, customer_writes, deliver_fixtures, hours_ago, user, user_id

pytestmark = pytest.mark.database


@pytest.fixture
def team(app, auth):
    """An owner, two agents and three conversations: one per agent and one unassigned."""
    auth.setup_owner()
    ada = auth.create_user("agent", "ada@example.com", "Ada Agent")
    bob = auth.create_user("agent", "bob@example.com", "Bob Agent")
    database = app.extensions["sigdesk"].database
    ids = {
        "ada": customer_writes(database, "15550000001", "Order for Ada", at=hours_ago(3)),
        "bob": customer_writes(database, "15550000002", "Order for Bob", at=hours_ago(2)),
        "none": customer_writes(database, "15550000003", "Who helps me?", at=hours_ago(1)),
    }
    assign(database, ids["ada"], user_id(database, ada.email))
    assign(database, ids["bob"], user_id(database, bob.email))
    return database, ids


def visible_ids(database, email: str, **filters) -> list[int]:
    with database.session() as session:
        page = services.list_page(session, user(session, email), Filters(**filters))
        return [row.conversation.id for row in page.rows]


def test_agent_sees_own_and_unassigned_conversations_only(team):
    database, ids = team
    assert visible_ids(database, "ada@example.com") == [ids["none"], ids["ada"]]


def test_admins_and_owners_see_every_conversation(team, auth):
    database, ids = team
    auth.create_user("admin", "adam@example.com")
    assert visible_ids(database, "adam@example.com") == [ids["none"], ids["bob"], ids["ada"]]
    assert visible_ids(database, "owner@example.com") == [ids["none"], ids["bob"], ids["ada"]]


def test_the_setting_widens_what_agents_see(team, app):
    database, ids = team
    with database.session() as session:
        settings.set_value(session, app.extensions["sigdesk"].cipher, "inbox.agents_see_all", True)
    assert visible_ids(database, "ada@example.com") == [ids["none"], ids["bob"], ids["ada"]]
    with database.session() as session:
        services.get_conversation(session, user(session, "ada@example.com"), ids["bob"])


def test_agent_cannot_open_others_conversations(team):
    database, ids = team
    with database.session() as session, pytest.raises(InboxError) as refused:
        services.get_conversation(session, user(session, "ada@example.com"), ids["bob"])
    assert refused.value.status == 404


def test_filters_mine_unassigned_status_unread_and_label(team):
    database, ids = team
    assert visible_ids(database, "owner@example.com", view="mine") == []
    assert visible_ids(database, "ada@example.com", view="mine") == [ids["ada"]]
    assert visible_ids(database, "owner@example.com", view="unassigned") == [ids["none"]]
    with database.session() as session:
        actions.set_status(session, session.get(Conversation, ids["bob"]), "pending")
        session.get(Conversation, ids["none"]).unread_count = 0
        label = labels.create_label(session, "wholesale")
        labels.set_label(session, session.get(Conversation, ids["ada"]), label.id, True)
        label_id = label.id
    assert visible_ids(database, "owner@example.com", status="pending") == [ids["bob"]]
    assert visible_ids(database, "owner@example.com", status="any", unread=True) == [ids["bob"], ids["ada"]]
    assert visible_ids(database, "owner@example.com", label_id=label_id) == [ids["ada"]]


def test_rows_carry_preview_unread_labels_and_assignee(team):
    database, ids = team
    with database.session() as session:
        page = services.list_page(session, user(session, "owner@example.com"), Filters())
    row = next(row for row in page.rows if row.conversation.id == ids["ada"])
    assert row.preview.text == "Order for Ada" and row.preview.direction == "in"
    assert row.conversation.unread_count == 1
    assert row.assignee == "Ada Agent"


def test_list_pages_follow_last_activity_without_gaps(app, auth):
    auth.setup_owner()
    database = app.extensions["sigdesk"].database
    same_time = hours_ago(1)
    made = [
        customer_writes(database, f"1555100{n:04d}", f"hi {n}", at=same_time if n % 2 else hours_ago(n))
        for n in range(7)
    ]
    seen: list[int] = []
    cursor = None
    with database.session() as session:
        owner = user(session, "owner@example.com")
        while True:
            page = services.list_page(session, owner, Filters(), Cursor.decode(cursor) if cursor else None, limit=3)
            seen += [row.conversation.id for row in page.rows]
            cursor = page.next_cursor
            if cursor is None:
                break
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen))


def test_unread_total_counts_only_visible_conversations(team):
    database, _ = team
    with database.session() as session:
        assert services.unread_total(session, user(session, "ada@example.com")) == 2
        assert services.unread_total(session, user(session, "owner@example.com")) == 3


def test_thread_opens_at_the_latest_fifty_and_pages_back(app, auth):
    auth.setup_owner()
    database = app.extensions["sigdesk"].database
    conversation_id = None
    for n in range(60):
        conversation_id = customer_writes(
            database, "15552220000", f"message {n}", at=hours_ago(2) + timedelta(seconds=n)
        )
    with database.session() as session:
        conversation = session.get(Conversation, conversation_id)
        latest = services.thread(session, conversation)
        assert [m.text for m in latest.messages][-1] == "message 59" and len(latest.messages) == 50 and latest.has_older
        older = services.thread(session, conversation, before=latest.messages[0].id)
        assert [m.text for m in older.messages] == [f"message {n}" for n in range(10)] and not older.has_older
        target = latest.messages[0].id - 5
        around = services.thread(session, conversation, around=target)
        assert target in [m.id for m in around.messages] and around.focus == target and around.has_newer
        newer = services.thread(session, conversation, after=latest.messages[-2].id)
        assert [m.text for m in newer.messages] == ["message 59"]


def test_around_a_message_of_another_conversation_is_not_found(team):
    database, ids = team
    with database.session() as session:
        other = session.scalar(select(Message.id).where(Message.conversation_id == ids["bob"]))
        with pytest.raises(InboxError) as missing:
            services.thread(session, session.get(Conversation, ids["ada"]), around=other)
    assert missing.value.status == 404


def test_edits_revokes_and_reactions_show_on_their_target_not_as_rows(app, auth):
    auth.setup_owner()
    database = app.extensions["sigdesk"].database
    deliver_fixtures(database, "message_text", "message_edit", "message_reaction", "message_image", "message_revoke")
    with database.session() as session:
        text = session.scalar(select(Message).where(Message.wamid == "wamid.FIX.text.1"))
        page = services.thread(session, session.get(Conversation, text.conversation_id))
        kinds = [m.type for m in page.messages]
        assert "edit" not in kinds and "revoke" not in kinds
        assert page.reactions.get("wamid.FIX.text.1") == [("customer", "👍")] or "wamid.FIX.text.1" in page.reactions
        edited = next(m for m in page.messages if m.wamid == "wamid.FIX.text.1")
        assert edited.edited_at is not None


def test_snooze_needs_a_future_time_and_reopens_when_due(team):
    database, ids = team
    with database.session() as session:
        conversation = session.get(Conversation, ids["ada"])
        with pytest.raises(UserError):
            actions.set_status(session, conversation, "snoozed", utcnow() - timedelta(minutes=1))
        with pytest.raises(UserError):
            actions.set_status(session, conversation, "snoozed")
        with pytest.raises(UserError):
            actions.set_status(session, conversation, "sleeping")
        actions.set_status(session, conversation, "snoozed", utcnow() + timedelta(minutes=5))
    with database.session() as session:
        assert actions.reopen_snoozed(session) == []
        reopened = actions.reopen_snoozed(session, now=utcnow() + timedelta(minutes=6))
    assert reopened == [(ids["ada"], user_id(database, "ada@example.com"))]
    with database.session() as session:
        conversation = session.get(Conversation, ids["ada"])
        assert (conversation.status, conversation.snoozed_until) == ("open", None)
        assert [note.kind for note in session.scalars(select(Note).where(Note.conversation_id == ids["ada"]))] == [
            "activity"
        ]


def test_a_customer_message_reopens_a_snoozed_conversation(team):
    database, ids = team
    with database.session() as session:
        actions.set_status(session, session.get(Conversation, ids["none"]), "snoozed", utcnow() + timedelta(days=1))
    customer_writes(database, "15550000003", "Are you there?")
    with database.session() as session:
        assert session.get(Conversation, ids["none"]).status == "open"


def test_the_snooze_job_publishes_what_it_reopened(team, app):
    database, ids = team
    with database.session() as session:
        conversation = session.get(Conversation, ids["bob"])
        conversation.status, conversation.snoozed_until = "snoozed", utcnow() - timedelta(seconds=1)
    stream = app.extensions["sigdesk"].events.subscribe()
    job = SnoozeWaker(every=60)
    with database.session() as session:
        assert job(session) == 1
    with database.session() as session:
        assert job(session) == 0  # not looked at again before `every` seconds
    published = stream.get(timeout=1)
    assert [(event.kind, event.conversation_id, event.assignee_id) for event in published] == [
        ("conversation.updated", ids["bob"], user_id(database, "bob@example.com"))
    ]


def test_assignment_refuses_unknown_people(team):
    database, ids = team
    bob = user_id(database, "bob@example.com")
    with database.session() as session:
        conversation = session.get(Conversation, ids["none"])
        with pytest.raises(UserError):
            actions.assign(session, conversation, 999)
        assert actions.assign(session, conversation, bob) is None


def test_notes_need_text(team):
    database, ids = team
    with database.session() as session:
        owner = user(session, "owner@example.com")
        with pytest.raises(UserError):
            actions.add_note(session, session.get(Conversation, ids["ada"]), owner, "   ")
        note = actions.add_note(session, session.get(Conversation, ids["ada"]), owner, " Call back at 5 ")
        assert (note.body, note.kind) == ("Call back at 5", "note")


def test_canned_shortcuts_are_unique_and_searchable(team):
    database, _ = team
    with database.session() as session:
        owner = user(session, "owner@example.com")
        canned.create_canned(session, "/Hours", "We open at 9.", owner)
        canned.create_canned(session, "holiday", "Closed on Sunday.", owner)
        with pytest.raises(UserError) as taken:
            canned.create_canned(session, "hours", "again", owner)
        assert taken.value.status == 409
        with pytest.raises(UserError):
            canned.create_canned(session, "two words", "x", owner)
        assert [row.shortcut for row in canned.list_canned(session, "/ho")] == ["holiday", "hours"]
        assert [row.shortcut for row in canned.list_canned(session, "hou")] == ["hours"]
        assert canned.list_canned(session, "h_") == [] and canned.list_canned(session, "%") == []  # not wildcards


def test_labels_are_unique(team):
    database, _ = team
    with database.session() as session:
        labels.create_label(session, "VIP")
        with pytest.raises(UserError) as taken:
            labels.create_label(session, "VIP")
    assert taken.value.status == 409
