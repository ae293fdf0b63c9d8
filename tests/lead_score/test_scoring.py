"""Each rule kind, the sum clamped to 0-100, the reasons in rule order, and the worker rescoring whoever an
event touched (through the real outbox consumer), or everyone after a rules change."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import false, select, update

from sigdesk.consent.commands import record_consent
from sigdesk.contacts.commands import create_contact, update_contact
from sigdesk.custom_fields.commands import define_field
from sigdesk.db import utcnow
from sigdesk.lead_score import commands
from sigdesk.lead_score.scoring import Decay, load_rules, plug, rescore_everyone
from sigdesk.lifecycle import commands as lifecycle
from sigdesk.lifecycle.services import find_stage, find_tag
from sigdesk.models import Contact, Conversation, OutboxCursor
from sigdesk.events.outbox import record
from sigdesk.events.catalogue import MessageReceived
from tests import factories
from tests.lead_score.helpers import SYSTEM, feed, rule, score

pytestmark = pytest.mark.database


def contact(app, **fields) -> int:
    with app.extensions["sigdesk"].database.session() as session:
        made = factories.contact(session, **fields)
        session.commit()
        return made.id


def test_with_no_rules_a_contact_scores_zero_with_no_reasons(app):
    feed(app)
    with app.extensions["sigdesk"].database.session() as session:
        made = create_contact(session, SYSTEM, "+4917012345670")
        session.commit()
        contact_id = made.id
    assert score(app, contact_id) == (None, [])  # not scored yet: the worker does it
    feed(app)
    assert score(app, contact_id) == (0, [])


def test_opted_in_tag_and_stage_rules_add_their_points_with_their_reasons_in_rule_order(app):
    feed(app)
    with app.extensions["sigdesk"].database.session() as session:
        lifecycle.create_tag(session, SYSTEM, "VIP")
        if find_stage(session, "Qualified") is None:  # MariaDB's tables are emptied between tests
            lifecycle.create_stage(session, SYSTEM, "Qualified")
        session.commit()
    rule(app, "opted_in", 10, label="Opted in")
    rule(app, "has_tag", 20, "vip")
    rule(app, "in_stage", 15, "Qualified")
    someone, nobody = contact(app), contact(app)
    feed(app)
    assert score(app, someone) == (0, []) and score(app, nobody) == (0, [])
    with app.extensions["sigdesk"].database.session() as session:
        record_consent(session, SYSTEM, someone, "opted_in", "agent", "Asked at the counter")
        session.commit()
    feed(app)
    assert score(app, someone) == (10, [("Opted in", 10)])
    with app.extensions["sigdesk"].database.session() as session:
        update_contact(session, SYSTEM, someone, {"tags": ["VIP"], "stage": "Qualified"})
        session.commit()
    feed(app)
    assert score(app, someone) == (45, [("Opted in", 10), ("Tag VIP", 20), ("Stage Qualified", 15)])
    assert score(app, nobody) == (0, [])
    with app.extensions["sigdesk"].database.session() as session:
        lifecycle.untag_contact(session, SYSTEM, someone, find_tag(session, "vip").id)
        lifecycle.set_stage(session, SYSTEM, someone, None)
        session.commit()
    feed(app)
    assert score(app, someone) == (10, [("Opted in", 10)])


def test_the_sum_is_clamped_to_0_and_100_while_every_reason_is_kept(app):
    feed(app)
    rule(app, "opted_in", 80, label="Opted in")
    rule(app, "replied_within_day", 70, label="Answers fast")
    keen = contact(app, marketing_consent="opted_in", replied_within_day_at=utcnow())
    feed(app)
    with app.extensions["sigdesk"].database.session() as session:
        rescore_everyone(session)
    assert score(app, keen) == (100, [("Opted in", 80), ("Answers fast", 70)])
    rule(app, "has_ordered", -100, label="Never ordered")  # counts once orders exist: nobody matches it yet
    rule(app, "opted_in", -100, label="Too keen")
    rule(app, "opted_in", -100, label="Far too keen")
    feed(app)
    assert score(app, keen) == (0, [("Opted in", 80), ("Answers fast", 70), ("Too keen", -100), ("Far too keen", -100)])


def test_custom_field_rules_read_whether_a_field_is_set_and_what_it_equals(app):
    feed(app)
    with app.extensions["sigdesk"].database.session() as session:
        define_field(session, SYSTEM, "Budget", "number", key="budget")
        define_field(session, SYSTEM, "Plan", "choice", key="plan", options=["Free", "Pro"])
        session.commit()
    rule(app, "field_set", 5, "budget")
    rule(app, "field_equals", 30, "plan=Pro")
    rule(app, "field_equals", 7, "budget=1,000.5")
    with app.extensions["sigdesk"].database.session() as session:
        someone = create_contact(session, SYSTEM, "+4917012345671", fields={"budget": 1000.5, "plan": "Free"}).id
        session.commit()
    feed(app)
    assert score(app, someone) == (12, [("Has budget", 5), ("budget = 1,000.5", 7)])
    with app.extensions["sigdesk"].database.session() as session:
        update_contact(session, SYSTEM, someone, {"fields": {"plan": "Pro", "budget": None}})
        session.commit()
    feed(app)
    assert score(app, someone) == (30, [("plan = Pro", 30)])


def message(app, conversation_id: int, contact_id: int, at, direction: str = "in") -> int:
    """A message as ingest stores it, with its message.received event."""
    with app.extensions["sigdesk"].database.session() as session:
        made = factories.message(session, session.get(Conversation, conversation_id), direction, timestamp=at)
        if direction == "in":
            session.execute(update(Contact).where(Contact.id == contact_id).values(last_inbound_at=at))
        record(session, MessageReceived(conversation_id, None, made.id, contact_id, "text"))
        session.commit()
        return made.id


def conversation(app) -> tuple[int, int]:
    with app.extensions["sigdesk"].database.session() as session:
        made = factories.conversation(session)
        session.commit()
        return made.id, made.contact_id


def test_replied_within_a_day_counts_an_answer_within_24_hours_of_a_business_message_once_for_good(app):
    feed(app)
    rule(app, "replied_within_day", 25, label="Replies fast")
    now = utcnow()
    slow_conversation, slow = conversation(app)
    fast_conversation, fast = conversation(app)
    message(app, slow_conversation, slow, now - timedelta(days=5), "out")
    message(app, slow_conversation, slow, now - timedelta(days=3))  # two days later: too late
    message(app, slow_conversation, slow, now - timedelta(days=2, hours=1))  # wrote first, unasked
    message(app, fast_conversation, fast, now - timedelta(days=3), "out")
    message(app, fast_conversation, fast, now - timedelta(days=2, hours=2))  # 22 hours later
    feed(app)
    assert score(app, slow) == (0, [])
    assert score(app, fast) == (25, [("Replies fast", 25)])
    message(app, fast_conversation, fast, now)  # later messages change nothing
    feed(app)
    assert score(app, fast) == (25, [("Replies fast", 25)])


def test_wrote_within_n_days_follows_each_message_and_ends_when_the_days_have_passed(app):
    feed(app)
    rule(app, "recent_inbound", 20, "7")
    conversation_id, someone = conversation(app)
    message(app, conversation_id, someone, utcnow() - timedelta(days=8))
    feed(app)
    assert score(app, someone) == (0, [])
    message(app, conversation_id, someone, utcnow() - timedelta(days=6))
    feed(app)
    assert score(app, someone) == (20, [("Wrote within 7 days", 20)])
    with app.extensions["sigdesk"].database.session() as session:
        assert Decay.run(session, now=utcnow() + timedelta(days=0.5)) == 0  # still within the 7 days
        assert Decay.run(session, now=utcnow() + timedelta(days=2)) == 1
    assert score(app, someone) == (0, [])


def test_a_message_from_a_new_customer_scores_them_even_with_no_message_rules(app):
    feed(app)
    rule(app, "opted_in", 10)
    conversation_id, someone = conversation(app)
    assert score(app, someone) == (None, [])
    message(app, conversation_id, someone, utcnow())
    feed(app)
    assert score(app, someone) == (0, [])


def test_a_rules_change_rescores_everyone_in_batches_and_a_stale_tag_name_matches_nobody(app):
    feed(app)
    with app.extensions["sigdesk"].database.session() as session:
        vip = lifecycle.create_tag(session, SYSTEM, "VIP")
        ids = [factories.contact(session, marketing_consent="opted_in").id for _ in range(12)]
        session.commit()
        for contact_id in ids[:3]:
            lifecycle.tag_contact(session, SYSTEM, contact_id, vip.id)
        session.commit()
    feed(app)
    first = rule(app, "opted_in", 10)
    feed(app)
    assert {score(app, contact_id)[0] for contact_id in ids} == {10}
    with app.extensions["sigdesk"].database.session() as session:
        assert rescore_everyone(session, batch=5) == 12
        commands.update_rule(session, SYSTEM, first, points=15)
        commands.create_rule(session, SYSTEM, "has_tag", 50, "VIP")
        session.commit()
    feed(app)
    assert [score(app, contact_id)[0] for contact_id in ids] == [65] * 3 + [15] * 9
    with app.extensions["sigdesk"].database.session() as session:
        lifecycle.rename_tag(session, SYSTEM, vip.id, "Very important")
        session.commit()
    feed(app)
    assert [score(app, contact_id)[0] for contact_id in ids] == [15] * 12
    with app.extensions["sigdesk"].database.session() as session:
        commands.delete_rule(session, SYSTEM, first)
        session.commit()
    feed(app)
    assert [score(app, contact_id) for contact_id in ids] == [(0, [])] * 12


def test_a_later_issue_plugs_in_the_has_ordered_condition(app):
    feed(app)
    someone = contact(app, company="Orders Ltd")
    rule(app, "has_ordered", 40, label="Has ordered")
    feed(app)
    assert score(app, someone) == (0, [])
    try:
        plug("has_ordered", lambda session, rule, now: Contact.company == "Orders Ltd")
        with app.extensions["sigdesk"].database.session() as session:
            rescore_everyone(session, load_rules(session))
        assert score(app, someone) == (40, [("Has ordered", 40)])
    finally:
        plug("has_ordered", lambda session, rule, now: false())


def test_the_consumer_offered_the_same_events_again_scores_the_same(app):
    feed(app)
    rule(app, "opted_in", 10)
    someone = contact(app)
    with app.extensions["sigdesk"].database.session() as session:
        record_consent(session, SYSTEM, someone, "opted_in", "agent")
        session.commit()
    feed(app)
    with app.extensions["sigdesk"].database.session() as session:
        session.get(OutboxCursor, "lead score").last_id = 0
        session.commit()
    state = app.extensions["sigdesk"]
    state.outbox._positions.clear()
    feed(app)
    assert score(app, someone) == (10, [("Opted in", 10)])
    with app.extensions["sigdesk"].database.session() as session:
        assert session.scalar(select(Contact.lead_score).where(Contact.id == someone)) == 10


def test_deleting_a_field_a_rule_reads_rescores_everyone_and_the_rule_says_it_matches_nobody(app):
    from sigdesk.custom_fields.commands import delete_field
    from sigdesk.lead_score.services import broken, list_rules

    feed(app)
    with app.extensions["sigdesk"].database.session() as session:
        field = define_field(session, SYSTEM, "Budget", "number", key="budget")
        session.commit()
        field_id = field.id
    rule(app, "field_set", 5, "budget")
    with app.extensions["sigdesk"].database.session() as session:
        someone = create_contact(session, SYSTEM, "+4917012345679", fields={"budget": 3}).id
        session.commit()
    feed(app)
    assert score(app, someone) == (5, [("Has budget", 5)])
    with app.extensions["sigdesk"].database.session() as session:
        delete_field(session, SYSTEM, field_id)
        session.commit()
    feed(app)
    assert score(app, someone) == (0, [])
    with app.extensions["sigdesk"].database.session() as session:
        assert broken(session, list_rules(session)[0]).startswith("Matches nobody: There is no custom field 'budget'")


def test_reordering_the_rules_reorders_the_reasons_and_names_every_rule_once(app):
    from sigdesk.errors import UserError
    from tests.commanding import audit, events

    feed(app)
    first = rule(app, "opted_in", 10, label="Opted in")
    second = rule(app, "replied_within_day", 5, label="Replies fast")
    someone = contact(app, marketing_consent="opted_in", replied_within_day_at=utcnow())
    feed(app)
    assert score(app, someone) == (15, [("Opted in", 10), ("Replies fast", 5)])
    with app.extensions["sigdesk"].database.session() as session:
        with pytest.raises(UserError) as refused:
            commands.reorder_rules(session, SYSTEM, [second])
        assert refused.value.field == "rule_ids"
        assert [item.id for item in commands.reorder_rules(session, SYSTEM, [second, first])] == [second, first]
        session.commit()
    feed(app)
    assert score(app, someone) == (15, [("Replies fast", 5), ("Opted in", 10)])
    assert audit(app, "leadscore.rule.reorder")[0].detail == {"order": [second, first]}
    assert events(app, "lead_score.rules_changed")[-1] == {"rule_id": None, "change": "moved"}


def test_agents_may_not_change_rules_through_the_command_either(app):
    from sigdesk.actor import Actor
    from sigdesk.errors import UserError

    with app.extensions["sigdesk"].database.session() as session:
        agent = Actor(factories.user(session, "agent"), "cli")
        with pytest.raises(UserError) as refused:
            commands.create_rule(session, agent, "opted_in", 10)
        assert refused.value.status == 403
