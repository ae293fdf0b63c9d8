"""After the send: Meta's status webhooks move each recipient on (delivered, read, failed; forward only), an
`unknown` recipient is adopted when Meta's status carries our callback data, and a customer's reply within
the attribution days marks the newest broadcast they got as replied."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import event as sa_event, select

from sigdesk.broadcasts.followers import Followers
from sigdesk.db import utcnow
from sigdesk.events.catalogue import from_stored
from sigdesk.events.outbox import Stored, read_after
from sigdesk.models import Message
from sigdesk.models.broadcast import Broadcast, BroadcastRecipient
from sigdesk.outbound import services as outbound
from tests import factories
from tests.broadcasts.test_engine import (
    Clock,
    campaign,
    engine_for,
    number,
    recipient_of,
    sent_to,
    states,
    status_of,
)
from tests.fakes.graph import PHONE_NUMBER_ID, WABA_ID


def webhook(client, body) -> None:
    raw, headers = factories.signed(json.dumps(body).encode(), factories.APP_SECRET)
    assert client.post("/webhooks/whatsapp", data=raw, headers=headers).status_code == 200


HELD_BACK = {
    "code": 131049,
    "title": "This message was not delivered to maintain healthy ecosystem engagement.",
}


def status(client, wamid, state, wa_id, **extra) -> None:
    webhook(
        client,
        factories.status_update(
            wamid, state, wa_id, waba_id=WABA_ID, meta=factories.metadata(PHONE_NUMBER_ID, "1"), **extra
        ),
    )


def reply(client, wa_id, wamid) -> None:
    webhook(
        client,
        factories.incoming(
            wa_id,
            "text",
            {"body": "Yes please!"},
            wamid=wamid,
            waba_id=WABA_ID,
            meta=factories.metadata(PHONE_NUMBER_ID, "1"),
        ),
    )


def follow(app) -> int:
    """One pass of the outbox consumers, as the worker runs them."""
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        return state.outbox(session)


def sent_campaign(app, fake_graph, count=3):
    broadcast_id = campaign(app, fake_graph, count=count)
    follow(app)  # the consumers start reading from here
    engine_for(app).drain(timeout=10)
    return broadcast_id


def wamid_of(app, broadcast_id, wa_id) -> str:
    with app.extensions["sigdesk"].database.session() as session:
        return session.get(Message, recipient_of(app, broadcast_id, wa_id).message_id).wamid


@pytest.mark.database
def test_statuses_move_recipients_forward_only(app, client, fake_graph):
    broadcast_id = sent_campaign(app, fake_graph)
    first, second, third = (wamid_of(app, broadcast_id, number(i)) for i in range(3))
    status(client, first, "delivered", number(0))
    status(client, second, "read", number(1))
    status(client, third, "failed", number(2), errors=[{"code": 131026, "title": "Message undeliverable"}])
    follow(app)
    assert states(app, broadcast_id) == {"delivered": 1, "read": 1, "failed": 1}
    delivered = recipient_of(app, broadcast_id, number(0))
    assert delivered.delivered_at is not None and delivered.sent_at is not None
    assert "cannot receive WhatsApp" in recipient_of(app, broadcast_id, number(2)).reason

    status(client, second, "delivered", number(1))  # late and lower: nothing moves back
    status(client, first, "read", number(0))
    follow(app)
    assert recipient_of(app, broadcast_id, number(1)).state == "read"
    assert recipient_of(app, broadcast_id, number(0)).state == "read"


@pytest.mark.database
def test_a_reply_within_the_attribution_days_marks_the_newest_broadcast_replied(app, client, fake_graph):
    broadcast_id = sent_campaign(app, fake_graph, count=2)
    with app.extensions["sigdesk"].database.session() as session:
        older = session.scalar(
            select(BroadcastRecipient).where(
                BroadcastRecipient.broadcast_id == broadcast_id, BroadcastRecipient.wa_id == number(1)
            )
        )
        older.sent_at = utcnow() - timedelta(days=8)  # past broadcasts.attribution_days (7)
    reply(client, number(0), "wamid.REPLY0")
    reply(client, number(1), "wamid.REPLY1")
    follow(app)
    replied = recipient_of(app, broadcast_id, number(0))
    assert replied.state == "replied" and replied.replied_at is not None
    with app.extensions["sigdesk"].database.session() as session:
        assert session.get(Message, replied.reply_message_id).wamid == "wamid.REPLY0"
    assert recipient_of(app, broadcast_id, number(1)).state == "sent"

    status(client, wamid_of(app, broadcast_id, number(0)), "read", number(0))
    follow(app)
    assert recipient_of(app, broadcast_id, number(0)).state == "replied"  # read does not undo a reply


def test_an_unknown_recipient_is_adopted_by_a_status_with_our_callback_data(app, client, fake_graph):
    broadcast_id = campaign(app, fake_graph, count=1)
    follow(app)
    engine = engine_for(app)
    engine.housekeep()
    run = engine.runs[broadcast_id]
    engine._prepare(run)
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        outbound.claim(session, list(run.ready))  # claimed; then SigDesk is killed before the answer is stored
    with state.database.session() as session:
        assert outbound.recover_interrupted(session) == 0  # a broadcast's are the engine's to recover
        assert engine_for(app).recover(session) == 1  # no journal: it may have left
    lost = recipient_of(app, broadcast_id, number(0))
    assert lost.state == "unknown"
    with state.database.session() as session:
        ref = session.get(Message, lost.message_id).client_ref
    engine_for(app).drain(timeout=5)
    assert fake_graph.sent == []  # never sent again on SigDesk's own

    status(client, "wamid.ARRIVED", "delivered", number(0), biz_opaque_callback_data=ref)
    follow(app)
    adopted = recipient_of(app, broadcast_id, number(0))
    assert adopted.state == "delivered" and adopted.sent_at is not None


def test_the_followers_read_once_per_batch_and_kind(app, client, fake_graph):
    broadcast_id = sent_campaign(app, fake_graph, count=4)
    for i in range(4):
        status(client, wamid_of(app, broadcast_id, number(i)), "delivered", number(i))
    with app.extensions["sigdesk"].database.session() as session:
        factories.conversation(session, factories.contact(session, number(9)))
    for i in range(6):
        reply(client, number(9), f"wamid.OTHER{i}")  # a customer who got no broadcast
    state = app.extensions["sigdesk"]
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement.split()[0].upper())

    with state.database.session() as session:
        stored = [
            Stored(row[0], event)
            for row in read_after(session, 0, limit=1000)
            if (event := from_stored(row[2], json.loads(row[3]))) is not None and event.name in Followers.EVENTS
        ]
        sa_event.listen(state.database.engine, "before_cursor_execute", count)
        try:
            Followers()(session, stored)
        finally:
            sa_event.remove(state.database.engine, "before_cursor_execute", count)
    assert statements.count("SELECT") <= 3  # the statuses' join, the attribution setting, the replies' read
    assert states(app, broadcast_id) == {"delivered": 4}


def test_a_per_user_marketing_limit_reported_by_webhook_is_retried_with_a_new_message_then_marked(
    app, client, fake_graph
):
    broadcast_id = campaign(app, fake_graph, count=2, category="MARKETING")
    follow(app)
    engine_for(app).drain(timeout=10)
    assert status_of(app, broadcast_id).status == "completed"
    clock = Clock()
    held_back = []
    waits = []
    for tried in range(1, 4):
        before = recipient_of(app, broadcast_id, number(0))
        held_back.append(before.message_id)
        status(client, wamid_of(app, broadcast_id, number(0)), "failed", number(0), errors=[HELD_BACK])
        status(client, wamid_of(app, broadcast_id, number(0)), "failed", number(0), errors=[HELD_BACK])  # again
        follow(app)
        waiting = recipient_of(app, broadcast_id, number(0))
        assert (waiting.state, waiting.message_id, waiting.attempts) == ("pending", None, tried)
        waits.append(round((waiting.next_attempt_at - utcnow()).total_seconds() / 3600))
        assert status_of(app, broadcast_id).status == "running"  # the completed campaign runs again for it
        engine_for(app, clock=clock).drain(timeout=5, until=lambda: True)  # one pass: not due yet, nothing goes
        assert recipient_of(app, broadcast_id, number(0)).state == "pending"
        clock.advance(hours=waits[-1], minutes=1)
        engine_for(app, clock=clock).drain(timeout=10)
        again = recipient_of(app, broadcast_id, number(0))
        assert again.state == "sent" and again.message_id not in held_back  # a new message, in the same thread
        assert status_of(app, broadcast_id).status == "completed"
    assert waits == [1, 4, 12]
    assert sent_to(fake_graph)[number(0)] == 4 and sent_to(fake_graph)[number(1)] == 1

    status(client, wamid_of(app, broadcast_id, number(0)), "failed", number(0), errors=[HELD_BACK])
    follow(app)
    given_up = recipient_of(app, broadcast_id, number(0))
    assert given_up.state == "failed" and given_up.error_code == 131049 and "marketing message" in given_up.reason
    assert status_of(app, broadcast_id).status == "completed"
    with app.extensions["sigdesk"].database.session() as session:
        statuses = session.scalars(select(Message.status).where(Message.id.in_(held_back))).all()
    assert statuses == ["failed"] * 3  # the held-back messages stay in the thread as not delivered


def test_a_held_back_recipient_of_a_cancelled_campaign_is_marked_failed_not_retried(app, client, fake_graph):
    broadcast_id = campaign(app, fake_graph, count=1, category="MARKETING")
    follow(app)
    engine_for(app).drain(timeout=10)
    with app.extensions["sigdesk"].database.session() as session:
        session.get(Broadcast, broadcast_id).status = "cancelled"
    status(client, wamid_of(app, broadcast_id, number(0)), "failed", number(0), errors=[HELD_BACK])
    follow(app)
    assert recipient_of(app, broadcast_id, number(0)).state == "failed"
    assert status_of(app, broadcast_id).status == "cancelled"


def test_a_held_back_status_that_arrives_before_the_sends_answer_still_retries_the_recipient(app, client, fake_graph):
    broadcast_id = campaign(app, fake_graph, count=1, category="MARKETING")
    follow(app)
    status(client, "wamid.FAKE00000001", "failed", number(0), errors=[HELD_BACK])  # the fake's first wamid
    engine_for(app).drain(timeout=5, until=lambda: len(fake_graph.sent) == 1)  # the status came before the answer
    follow(app)
    waiting = recipient_of(app, broadcast_id, number(0))
    assert (waiting.state, waiting.message_id, waiting.attempts) == ("pending", None, 1)
    assert waiting.next_attempt_at > utcnow() + timedelta(minutes=59)
