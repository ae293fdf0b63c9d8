"""A broadcast changes through one command each: refused naming the field (storing nothing), audited as
broadcast.<verb>, announced as broadcast.changed after the commit. Its audience is frozen when it starts,
two starts at once have one winner, and cancel leaves nobody half-sent."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from sigdesk.actor import Actor
from sigdesk.broadcasts import commands
from sigdesk.db import utcnow
from sigdesk.errors import Conflict, NotFound, Refused, UserError
from sigdesk.models import Contact, Message, Template
from sigdesk.models.broadcast import Broadcast, BroadcastRecipient
from sigdesk.segments import commands as segments
from sigdesk.settings import services as settings
from tests import factories
from tests.broadcasts.campaigns import admin, customer, data, hello
from tests.commanding import audit, events

pytestmark = pytest.mark.database


@pytest.fixture
def database(app):
    return app.extensions["sigdesk"].database


def _count(database, model) -> int:
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def _recipients(database, broadcast_id: int) -> dict[int, tuple[str, str | None]]:
    with database.session() as session:
        rows = session.scalars(select(BroadcastRecipient).where(BroadcastRecipient.broadcast_id == broadcast_id))
        return {row.contact_id: (row.state, row.reason) for row in rows}


def test_a_broadcast_is_created_as_a_draft_audited_and_announced(app, database):
    with database.session() as session:
        who = customer(session)
        template = hello(session)
        broadcast = commands.create(session, admin(session), data(template, {"contact_ids": [who.id]}))
        broadcast_id = broadcast.id
    with database.session() as session:
        stored = session.get(Broadcast, broadcast_id)
        assert (stored.status, stored.template_name, stored.template_category) == ("draft", template.name, "MARKETING")
        assert stored.rate_per_second == 20 and stored.scheduled_at is None and stored.recipient_count == 0
    assert [entry.target for entry in audit(app, "broadcast.created")] == [f"broadcast {broadcast_id}"]
    assert events(app, "broadcast.changed") == [
        {"broadcast_id": broadcast_id, "change": "created", "status": "draft", "reason": None}
    ]


def test_a_schedule_in_the_past_is_refused_naming_scheduled_at_and_nothing_is_stored(database):
    with database.session() as session:
        who, template = customer(session), hello(session)
        actor = admin(session)
    past = (utcnow() - timedelta(hours=1)).isoformat()
    with pytest.raises(UserError) as refused, database.session() as session:
        commands.create(session, actor, data(template, {"contact_ids": [who.id]}, scheduled_at=past))
    assert (refused.value.status, refused.value.field) == (400, "scheduled_at")
    assert _count(database, Broadcast) == 0


def test_a_time_without_an_offset_is_the_businesss_wall_clock(app, database):
    state = app.extensions["sigdesk"]
    with database.session() as session:
        settings.set_text(session, state.cipher, "general.timezone", "Europe/Berlin")
        who, template = customer(session), hello(session)
        broadcast = commands.create(
            session, admin(session), data(template, {"contact_ids": [who.id]}, scheduled_at="2099-07-01T09:00")
        )
        assert broadcast.scheduled_at == datetime(2099, 7, 1, 7, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("status", ["DELETED", "PAUSED", "REJECTED", "PENDING"])
def test_a_template_that_is_not_approved_is_refused(database, status):
    with database.session() as session:
        who, template = customer(session), hello(session, status=status)
        with pytest.raises(Refused) as refused:
            commands.create(session, admin(session), data(template, {"contact_ids": [who.id]}))
    assert refused.value.field == "template" and status.lower() in str(refused.value)


def test_a_template_never_synced_is_not_found_naming_its_name(database):
    with database.session() as session:
        who = customer(session)
        ghost = Template(name="ghost", language="en_US")
        with pytest.raises(NotFound) as refused:
            commands.create(session, admin(session), data(ghost, {"contact_ids": [who.id]}))
    assert refused.value.field == "template.name"


@pytest.mark.parametrize(
    "given, field",
    [
        ({"1": "{contact.age}"}, "template.variables.body.1"),
        ({"1": "{contact.fields.shoe_size}"}, "template.variables.body.1"),
        ({}, "template.variables.body.1"),
        ({"1": "x", "2": "y"}, "template.variables.body.2"),
        ({"header": {"1": "x"}, "1": "y"}, "template.variables.header"),
    ],
)
def test_variables_are_checked_against_the_template_and_the_custom_fields(database, given, field):
    with database.session() as session:
        who, template = customer(session), hello(session)
        with pytest.raises(UserError) as refused:
            commands.create(session, admin(session), data(template, {"contact_ids": [who.id]}, variables=given))
    assert refused.value.field == field


def test_the_pace_may_not_exceed_the_numbers_throughput(app, database):
    with database.session() as session:
        settings.set_text(session, app.extensions["sigdesk"].cipher, "whatsapp.throughput", "80")
        who, template = customer(session), hello(session)
        with pytest.raises(UserError) as refused:
            commands.create(session, admin(session), data(template, {"contact_ids": [who.id]}, rate_per_second=81))
    assert refused.value.field == "rate_per_second"


def test_an_audience_naming_what_does_not_exist_is_refused_naming_it(database):
    with database.session() as session:
        who, template, actor = customer(session), hello(session), admin(session)
        with pytest.raises(NotFound) as refused:
            commands.create(session, actor, data(template, {"segment_id": 999}))
        assert refused.value.field == "audience.segment_id"
        with pytest.raises(NotFound) as refused:
            commands.create(session, actor, data(template, {"contact_ids": [who.id, 999999]}))
        assert refused.value.field == "audience.contact_ids.1"
        with pytest.raises(NotFound) as refused:
            commands.create(session, actor, data(template, {"import_id": 5}))
        assert refused.value.field == "audience.import_id"


def test_start_freezes_the_audience_so_later_changes_to_the_segment_do_not_change_it(app, database):
    with database.session() as session:
        actor = admin(session)
        berlin = [customer(session, city="Berlin") for _ in range(3)]
        customer(session, city="Hamburg")
        segment = segments.create_segment(
            session, actor, "Berlin", {"conditions": [{"field": "city", "op": "is", "value": "Berlin"}]}
        )
        broadcast = commands.create(session, actor, data(hello(session), {"segment_id": segment.id}))
        started = commands.start(session, actor, broadcast.id)
        assert (started.status, started.recipient_count) == ("running", 3) and started.started_at is not None
        broadcast_id = broadcast.id
    with database.session() as session:
        customer(session, city="Berlin")  # joins the segment after the start
        session.get(Contact, berlin[0].id).city = "Hamburg"  # leaves it
    assert _recipients(database, broadcast_id) == {who.id: ("pending", None) for who in berlin}
    assert [entry.detail["recipients"] for entry in audit(app, "broadcast.started")] == [3]


def test_a_broadcast_scheduled_ahead_waits_and_starts_only_when_its_time_comes(app, database):
    later = utcnow() + timedelta(hours=2)
    with database.session() as session:
        actor, who = admin(session), customer(session)
        broadcast = commands.create(
            session, actor, data(hello(session), {"contact_ids": [who.id]}, scheduled_at=later.isoformat())
        )
        assert commands.start(session, actor, broadcast.id).status == "scheduled"
        assert broadcast.recipient_count == 0
        with pytest.raises(Conflict):
            commands.start(session, actor, broadcast.id)
        started = commands.start(session, Actor.system(), broadcast.id, now=later + timedelta(seconds=1))
        assert started.status == "running" and started.recipient_count == 1
    changes = [event["change"] for event in events(app, "broadcast.changed")]
    assert changes == ["created", "scheduled", "started"]


def test_two_admins_pressing_start_at_once_one_wins_and_the_other_gets_a_conflict(app, database):
    with database.session() as session:
        first, second = admin(session), admin(session)
        contacts = [customer(session) for _ in range(50)]
        broadcast_id = commands.create(
            session, first, data(hello(session), {"contact_ids": [c.id for c in contacts]})
        ).id
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def press(actor: Actor) -> None:
        barrier.wait()
        try:
            with database.session() as session:
                outcomes.append(commands.start(session, actor, broadcast_id).status)
        except Conflict as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=press, args=(actor,)) for actor in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(map(type, outcomes), key=str) == sorted([str, Conflict], key=str)
    conflict = next(outcome for outcome in outcomes if isinstance(outcome, Conflict))
    assert conflict.status == 409 and "already running" in str(conflict)
    assert len(_recipients(database, broadcast_id)) == 50
    assert len(audit(app, "broadcast.started")) == 1


def test_an_audience_nobody_in_which_may_receive_it_is_refused_and_the_draft_stays(database):
    with database.session() as session:
        actor = admin(session)
        opted_out = customer(session, consent="opted_out")
        broadcast_id = commands.create(session, actor, data(hello(session), {"contact_ids": [opted_out.id]})).id
    with pytest.raises(Refused) as refused, database.session() as session:
        commands.start(session, actor, broadcast_id)
    assert refused.value.field == "audience"
    with database.session() as session:
        assert session.get(Broadcast, broadcast_id).status == "draft"
    assert _count(database, BroadcastRecipient) == 0


def test_a_template_deleted_at_meta_after_the_draft_was_made_refuses_the_start(database):
    with database.session() as session:
        actor, who, template = admin(session), customer(session), hello(session)
        broadcast_id = commands.create(session, actor, data(template, {"contact_ids": [who.id]})).id
        template.status = "DELETED"
    with pytest.raises(Refused) as refused, database.session() as session:
        commands.start(session, actor, broadcast_id)
    assert refused.value.field == "template" and "deleted" in str(refused.value)


def test_pause_resume_and_cancel_move_the_status_once_each(app, database):
    with database.session() as session:
        actor = admin(session)
        people = [customer(session) for _ in range(3)]
        broadcast = commands.create(session, actor, data(hello(session), {"contact_ids": [p.id for p in people]}))
        commands.start(session, actor, broadcast.id)
        paused = commands.pause(session, actor, broadcast.id)
        assert (paused.status, paused.pause_kind) == ("paused", "person")
        with pytest.raises(Conflict):
            commands.pause(session, actor, broadcast.id)
        assert commands.resume(session, actor, broadcast.id).status == "running"
        with pytest.raises(Conflict):
            commands.resume(session, actor, broadcast.id)
    assert [e.detail["status"] for e in audit(app, "broadcast.paused") + audit(app, "broadcast.resumed")] == [
        "paused",
        "running",
    ]


def test_cancel_skips_who_is_pending_and_withdraws_a_message_still_queued(app, database):
    with database.session() as session:
        actor = admin(session)
        waiting, queued, sent = (customer(session) for _ in range(3))
        template = hello(session)
        broadcast = factories.broadcast(session, template, [waiting, queued, sent], status="running")
        factories.recipient(session, broadcast, waiting)
        conversation = factories.conversation(session, queued)
        message = factories.message(
            session, conversation, "out", "template", status="queued", wamid=None, broadcast_id=broadcast.id
        )
        factories.recipient(session, broadcast, queued, state="sending", message_id=message.id)
        factories.recipient(session, broadcast, sent, state="sent")
        cancelled = commands.cancel(session, actor, broadcast.id)
        assert cancelled.status == "cancelled" and cancelled.finished_at is not None
        broadcast_id, message_id = broadcast.id, message.id
        with pytest.raises(Conflict):
            commands.cancel(session, actor, broadcast.id)
    assert _recipients(database, broadcast_id) == {
        waiting.id: ("skipped", "cancelled"),
        queued.id: ("skipped", "cancelled"),
        sent.id: ("sent", None),
    }
    with database.session() as session:
        assert session.get(Message, message_id).status == "failed"
    [entry] = audit(app, "broadcast.cancelled")
    assert (entry.detail["skipped"], entry.detail["withdrawn"]) == (1, 1)


def test_the_engines_pause_and_completion_do_nothing_when_a_person_moved_first(app, database):
    with database.session() as session:
        actor = admin(session)
        broadcast = factories.broadcast(session, hello(session), status="running")
        commands.pause(session, actor, broadcast.id)
        assert commands.pause_by_system(session, broadcast.id, "limit", "Messaging limit of 250 reached") is False
        assert commands.complete(session, broadcast.id) is False
        commands.resume(session, actor, broadcast.id)
        resume_at = utcnow() + timedelta(hours=3)
        assert commands.pause_by_system(session, broadcast.id, "limit", "Messaging limit reached", resume_at) is True
        assert (broadcast.pause_kind, broadcast.resume_at) == (
            "limit",
            resume_at.replace(microsecond=broadcast.resume_at.microsecond),
        )
        assert commands.resume_by_system(session, broadcast.id) is False  # not yet
        assert commands.resume_by_system(session, broadcast.id, now=resume_at + timedelta(seconds=1)) is True
        assert (broadcast.status, broadcast.pause_kind, broadcast.resume_at) == ("running", None, None)
        commands.pause(session, actor, broadcast.id)
        commands.resume(session, actor, broadcast.id)
        assert commands.complete(session, broadcast.id) is True
        assert broadcast.status == "completed" and broadcast.finished_at is not None
    [system_pause] = [e for e in audit(app, "broadcast.paused") if e.detail.get("kind") == "limit"]
    assert system_pause.actor is None and system_pause.detail["reason"] == "Messaging limit reached"


def test_a_campaign_paused_for_its_template_resumes_only_once_the_template_is_approved_again(database):
    with database.session() as session:
        actor, template = admin(session), hello(session)
        broadcast = factories.broadcast(session, template, status="running")
        commands.pause_by_system(session, broadcast.id, "template", "The template was deleted at Meta (132001)")
        template.status = "DELETED"
        with pytest.raises(Refused):
            commands.resume(session, actor, broadcast.id)
        template.status = "APPROVED"
        assert commands.resume(session, actor, broadcast.id).status == "running"


def test_only_drafts_are_deleted_and_only_drafts_or_scheduled_ones_edited(app, database):
    with database.session() as session:
        actor, who, template = admin(session), customer(session), hello(session)
        draft = commands.create(session, actor, data(template, {"contact_ids": [who.id]}))
        edited = commands.update(session, actor, draft.id, data(template, {"contact_ids": [who.id]}, name="Renamed"))
        assert edited.name == "Renamed"
        running = factories.broadcast(session, template, status="running")
        with pytest.raises(Conflict):
            commands.update(session, actor, running.id, data(template, {"contact_ids": [who.id]}))
        with pytest.raises(Conflict):
            commands.delete(session, actor, running.id)
        commands.delete(session, actor, draft.id)
        assert session.get(Broadcast, draft.id) is None
    assert [e["change"] for e in events(app, "broadcast.changed")] == ["created", "edited", "deleted"]


def test_a_test_send_fills_the_variables_and_goes_through_the_inbox_send_path(app, database):
    with database.session() as session:
        actor = admin(session)
        model = customer(session, display_name="Ana López")
        template = hello(session)
        broadcast = commands.create(
            session, actor, data(template, {"contact_ids": [model.id]}, variables={"1": "{contact.first_name}"})
        )
        with pytest.raises(Refused) as stranger:
            commands.test_send(session, actor, broadcast.id, "+49 170 99887766", model.id)
        assert stranger.value.field == "phone" and "already a contact" in str(stranger.value)
        assert session.scalar(select(Contact).where(Contact.wa_id == "4917099887766")) is None  # nobody created
        factories.contact(session, "4917099887766")  # the owner saves their own phone once
        message = commands.test_send(session, actor, broadcast.id, "+49 170 99887766", model.id)
        assert (message.type, message.status, message.text, message.broadcast_id) == (
            "template",
            "queued",
            "Hello Ana!",
            None,
        )
        tester = session.get(Contact, message.contact_id)
        assert tester.wa_id == "4917099887766"
        with pytest.raises(UserError) as refused:
            commands.test_send(session, actor, broadcast.id, "+49 170 99887766")  # the tester has no name
        assert refused.value.field == "contact_id" and "contact.first_name" in str(refused.value)
    [sent] = audit(app, "broadcast.test_sent")
    [queued] = audit(app, "message.queue")  # the inbox's own entry and event, as a message typed there
    assert queued.detail["message_id"] == sent.detail["message_id"]
    assert [event["message_id"] for event in events(app, "message.queued")] == [sent.detail["message_id"]]


def test_merging_moves_recipients_and_keeps_one_row_per_broadcast(database):
    with database.session() as session:
        kept, merged = customer(session), customer(session)
        first = factories.broadcast(session, hello(session), status="running")
        second = factories.broadcast(session, hello(session), status="running")
        factories.recipient(session, first, merged, state="delivered")
        factories.recipient(session, second, kept, state="sent")
        factories.recipient(session, second, merged, state="read")
        commands.move_recipients(session, kept.id, merged.id)
        rows = session.scalars(select(BroadcastRecipient).order_by(BroadcastRecipient.broadcast_id)).all()
        assert [(row.broadcast_id, row.contact_id, row.state) for row in rows] == [
            (first.id, kept.id, "delivered"),
            (second.id, kept.id, "read"),
        ]


def test_merging_the_two_records_of_one_person_keeps_the_row_that_was_sent_not_its_duplicate(database):
    with database.session() as session:
        kept, merged = customer(session), customer(session)
        broadcast = factories.broadcast(session, hello(session), status="running")
        factories.recipient(session, broadcast, kept, state="skipped", reason="duplicate number")
        factories.recipient(session, broadcast, merged, state="delivered", message_id=41)
        waiting = factories.broadcast(session, hello(session), status="running")
        factories.recipient(session, waiting, kept, state="pending")
        factories.recipient(session, waiting, merged, state="skipped", reason="duplicate number")
        commands.move_recipients(session, kept.id, merged.id)
        rows = session.scalars(select(BroadcastRecipient).order_by(BroadcastRecipient.broadcast_id)).all()
        assert [(row.contact_id, row.state, row.reason, row.message_id) for row in rows] == [
            (kept.id, "delivered", None, 41),
            (kept.id, "pending", None, None),
        ]


def test_anonymising_erases_the_number_a_recipient_was_frozen_with(database):
    with database.session() as session:
        who = customer(session)
        row = factories.recipient(session, factories.broadcast(session, hello(session), status="running"), who)
        commands.erase_recipients(session, who.id)
        session.refresh(row)
        assert row.wa_id == f"erased-{row.id}"


def test_a_merge_and_an_anonymisation_run_the_registered_mover_and_eraser(app, database):
    from sigdesk.contacts import commands as contacts
    from sigdesk.merge import commands as merge

    with database.session() as session:
        kept, merged = customer(session), customer(session)
        broadcast = factories.broadcast(session, hello(session), status="running")
        row = factories.recipient(session, broadcast, merged, state="delivered")
        owner = Actor(factories.user(session, "owner"), "web")
        merge.merge_contacts(session, owner, kept.id, merged.id)
        session.refresh(row)
        assert (row.contact_id, row.state) == (kept.id, "delivered")
        contacts.anonymise(session, owner, kept.id, app.extensions["sigdesk"].config.data_dir)
        session.refresh(row)
        assert row.wa_id == f"erased-{row.id}" and row.state == "delivered"


def test_an_edit_waits_for_a_start_committed_meanwhile_and_is_then_refused(database):
    """The engine starting a scheduled broadcast while someone saves an edit: the edit reads the row as
    stored (locked), so it never rewrites the template or audience of a campaign that is already running."""
    if database.engine.dialect.name == "sqlite":
        pytest.skip("SQLite's write lock (BEGIN IMMEDIATE) already runs the two one after the other")
    with database.session() as session:
        actor, who, template = admin(session), customer(session), hello(session)
        broadcast_id = commands.create(session, actor, data(template, {"contact_ids": [who.id]})).id
    with database.session() as editing:
        commands.get(editing, broadcast_id)  # the editor's session has read the draft before the start
        with database.session() as starting:
            commands.start(starting, actor, broadcast_id)
        with pytest.raises(Conflict):
            commands.update(editing, actor, broadcast_id, data(template, {"contact_ids": [who.id]}, name="Late"))
    with database.session() as session:
        assert session.get(Broadcast, broadcast_id).name == "December batch"
