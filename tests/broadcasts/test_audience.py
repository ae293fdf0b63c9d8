"""Who gets a broadcast: one rule, applied when the audience is frozen and again before each send. Marketing
only to an opt-in, utility as the owner chose, never to a number that cannot receive or to a US number for
marketing, never twice to one person; and before it starts, what it will do in figures."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from sigdesk.actor import Actor
from sigdesk.broadcasts import audience
from sigdesk.custom_fields import commands as custom_fields
from sigdesk.custom_fields.services import set_values
from sigdesk.db import utcnow
from sigdesk.models import Contact
from sigdesk.models.broadcast import BroadcastRecipient
from sigdesk.models.contact_import import ImportChange, ImportJob
from sigdesk.settings import services as settings
from tests import factories
from tests.broadcasts.campaigns import customer, hello

pytestmark = pytest.mark.database


@pytest.fixture
def database(app):
    return app.extensions["sigdesk"].database


def _verdicts(session, broadcast, people):
    return {
        verdict.contact_id: verdict.reason
        for verdict in audience.verdicts(session, broadcast, [p.id for p in people], utcnow())
    }


def test_marketing_goes_only_to_contacts_whose_latest_word_is_an_opt_in(database):
    with database.session() as session:
        yes, no, unknown = (
            customer(session),
            customer(session, consent="opted_out"),
            customer(session, consent="unknown"),
        )
        stopped = customer(session, opted_out_marketing=True)  # Meta's 131050, recorded
        broadcast = factories.broadcast(session, hello(session, "MARKETING"))
        assert _verdicts(session, broadcast, [yes, no, unknown, stopped]) == {
            yes.id: None,
            no.id: audience.OPTED_OUT,
            unknown.id: audience.NO_OPT_IN,
            stopped.id: audience.OPTED_OUT,
        }


def test_utility_follows_the_owners_setting(app, database):
    with database.session() as session:
        yes, no, unknown = (
            customer(session),
            customer(session, consent="opted_out"),
            customer(session, consent="unknown"),
        )
        broadcast = factories.broadcast(session, hello(session, "UTILITY"))
        assert _verdicts(session, broadcast, [yes, no, unknown]) == {
            yes.id: None,
            no.id: audience.OPTED_OUT,
            unknown.id: None,
        }
        settings.set_text(session, app.extensions["sigdesk"].cipher, "broadcasts.utility_consent", "opted_in")
        assert _verdicts(session, broadcast, [yes, no, unknown]) == {
            yes.id: None,
            no.id: audience.OPTED_OUT,
            unknown.id: audience.NO_OPT_IN,
        }


def test_us_numbers_get_utility_but_never_marketing(database):
    with database.session() as session:
        american = customer(session, wa_id="12025550123")
        marketing = factories.broadcast(session, hello(session, "MARKETING"))
        utility = factories.broadcast(session, hello(session, "UTILITY"))
        assert _verdicts(session, marketing, [american]) == {american.id: audience.US_MARKETING}
        assert _verdicts(session, utility, [american]) == {american.id: None}


def test_a_number_meta_answered_131026_for_before_is_skipped(database):
    with database.session() as session:
        gone, fine = customer(session), customer(session)
        factories.message(
            session, factories.conversation(session, gone), "out", "template", status="failed", error_code=131026
        )
        factories.message(session, factories.conversation(session, fine), "out", "template", error_code=None)
        broadcast = factories.broadcast(session, hello(session))
        assert _verdicts(session, broadcast, [gone, fine]) == {gone.id: audience.UNREACHABLE, fine.id: None}


def test_no_number_or_one_meta_cannot_address_is_skipped(database):
    with database.session() as session:
        by_user_id = factories.contact(session, marketing_consent="opted_in")
        by_user_id.wa_id, by_user_id.user_id = None, "US.1234"
        short = customer(session, wa_id="4912")
        session.flush()
        broadcast = factories.broadcast(session, hello(session))
        assert _verdicts(session, broadcast, [by_user_id, short]) == {
            by_user_id.id: audience.NO_NUMBER,
            short.id: audience.INVALID_NUMBER,
        }


def test_one_person_written_two_ways_is_in_a_broadcast_once(database):
    with database.session() as session:
        # Brazil's ninth digit: the same mobile as Meta writes it before and after 2016.
        old, new = customer(session, wa_id="551187654321"), customer(session, wa_id="5511987654321")
        broadcast = factories.broadcast(session, hello(session), to=[old, new])
        assert _verdicts(session, broadcast, [old, new]) == {old.id: None, new.id: audience.DUPLICATE}
        audience.freeze(session, broadcast, utcnow())
        rows = session.scalars(select(BroadcastRecipient).order_by(BroadcastRecipient.contact_id)).all()
        assert [(row.contact_id, row.state, row.reason) for row in rows] == [
            (old.id, "pending", None),
            (new.id, "skipped", audience.DUPLICATE),
        ]


def test_the_persons_record_that_may_receive_it_is_the_one_sent_to_whichever_came_first(database):
    with database.session() as session:
        # Mexico's 521: one person, entered twice; only the newer record holds their opt-in.
        older = customer(session, consent="unknown", wa_id="5215512345678")
        newer = customer(session, wa_id="525512345678")
        broadcast = factories.broadcast(session, hello(session), to=[older, newer])
        assert _verdicts(session, broadcast, [older, newer]) == {older.id: audience.NO_OPT_IN, newer.id: None}


def test_a_contact_who_opts_out_after_the_freeze_is_skipped_by_the_check_at_send_time(database):
    with database.session() as session:
        who = customer(session)
        broadcast = factories.broadcast(session, hello(session), to=[who])
        audience.freeze(session, broadcast, utcnow())
        session.get(Contact, who.id).marketing_consent = "opted_out"
        session.flush()
        assert _verdicts(session, broadcast, [who]) == {who.id: audience.OPTED_OUT}


def test_freeze_writes_every_recipient_in_batches_pending_or_skipped_with_the_reason(database):
    with database.session() as session:
        people = [customer(session) for _ in range(audience.BATCH + 5)]
        outsider = customer(session, consent="unknown")
        broadcast = factories.broadcast(session, hello(session), to=[*people, outsider, people[0]])
        assert audience.freeze(session, broadcast, utcnow()) == len(people)
        assert broadcast.recipient_count == len(people) + 1
        skipped = session.scalars(select(BroadcastRecipient).where(BroadcastRecipient.state == "skipped")).all()
        assert [(row.contact_id, row.reason) for row in skipped] == [(outsider.id, audience.NO_OPT_IN)]


def test_the_contacts_of_a_finished_import_are_an_audience(database):
    with database.session() as session:
        imported = [customer(session) for _ in range(3)]
        customer(session)  # not in the import
        job = ImportJob(file_name="list.csv", format="csv", headers="[]", mapping="[]", mode="create", state="done")
        session.add(job)
        session.flush()
        session.add_all(ImportChange(job_id=job.id, contact_id=who.id, created=True) for who in imported)
        session.flush()
        assert list(audience.contact_ids(session, {"import_id": job.id})) == [who.id for who in imported]
        job.state = "running"
        with pytest.raises(Exception) as refused:
            audience.check(session, {"import_id": job.id})
        assert getattr(refused.value, "field", None) == "audience.import_id"


def test_the_summary_says_who_will_get_it_who_not_and_why_how_long_and_what_share_of_the_limit(app, database):
    with database.session() as session:
        senders = [customer(session) for _ in range(40)]
        out = [customer(session, consent="opted_out") for _ in range(3)]
        us = customer(session, wa_id="12025550123")
        recent = senders[0]  # got a template an hour ago: it does not count again against the limit
        factories.message(
            session, factories.conversation(session, recent), "out", "template", timestamp=utcnow() - timedelta(hours=1)
        )
        broadcast = factories.broadcast(session, hello(session), to=[*senders, *out, us], rate_per_second=20)
        summary = audience.summary(session, broadcast, utcnow())
        assert summary.will_send == 40
        assert summary.skipped_by_reason == {audience.OPTED_OUT: 3, audience.US_MARKETING: 1}
        assert summary.duration_seconds == 2
        assert (summary.limit_tier, summary.new_unique) == ("250", 39)
        assert summary.limit_used_share == pytest.approx(39 / 250)
        settings.set_text(session, app.extensions["sigdesk"].cipher, "whatsapp.messaging_limit", "unlimited")
        assert audience.summary(session, broadcast, utcnow()).limit_used_share is None
        broadcast.status = "running"
        audience.freeze(session, broadcast, utcnow())
        frozen = audience.summary(session, broadcast, utcnow())
        assert (frozen.will_send, frozen.skipped) == (40, 4)


def test_a_recipient_missing_a_variable_without_a_fallback_is_skipped_with_the_reason(database):
    with database.session() as session:
        custom_fields.define_field(session, Actor.system("cli"), "City code", "text", key="city_code")
        known, unknown = customer(session), customer(session)
        set_values(session, known.id, {"city_code": "B"})
        broadcast = factories.broadcast(
            session, hello(session), to=[known, unknown], variables={"body": {"1": "{contact.fields.city_code}"}}
        )
        summary = audience.summary(session, broadcast, utcnow())
        assert (summary.will_send, summary.skipped_by_reason) == (1, {"no value for contact.fields.city_code": 1})
        audience.freeze(session, broadcast, utcnow())
        rows = session.scalars(select(BroadcastRecipient).order_by(BroadcastRecipient.contact_id)).all()
        assert [(row.contact_id, row.state, row.reason) for row in rows] == [
            (known.id, "pending", None),
            (unknown.id, "skipped", "no value for contact.fields.city_code"),
        ]


def test_a_fallback_keeps_a_recipient_missing_the_value(database):
    with database.session() as session:
        nameless = customer(session)
        broadcast = factories.broadcast(
            session, hello(session), to=[nameless], variables={"body": {"1": "{contact.name|there}"}}
        )
        assert audience.freeze(session, broadcast, utcnow()) == 1
