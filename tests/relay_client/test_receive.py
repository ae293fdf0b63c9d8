import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from sigdesk.db import utcnow

from sigdesk.inbound.services import apply_stored
from sigdesk.models import Message, RejectedDelivery, RelayReceipt, WebhookDelivery
from sigdesk.relay_client import receive
from sigdesk.relay_client.receive import Relayed
from sigdesk.whatsapp.webhook import signature_header
from tests.relay.payloads import SECRET, delivery, wamid

pytestmark = pytest.mark.database

INSTALL = "a" * 32


def relayed(seq: int, secret: str = SECRET, tag: str = "t") -> Relayed:
    body = delivery(seq, tag)
    return Relayed(seq, signature_header(secret, body), body)


def store(app, events, secret=SECRET, process=True) -> receive.Stored:
    with app.extensions["sigdesk"].database.session() as session:
        stored = receive.store_relayed(session, INSTALL, events, secret)
        session.commit()
        if process:
            for pending in stored.pending:
                apply_stored(session, pending.delivery_id, pending.raw)
    return stored


def count(app, model, *where) -> int:
    with app.extensions["sigdesk"].database.session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def test_relayed_events_are_stored_as_relay_deliveries_and_ingested(app):
    stored = store(app, [relayed(1), relayed(2)])
    assert (stored.new, stored.duplicates, stored.quarantined) == (2, 0, 0)
    assert count(app, WebhookDelivery, WebhookDelivery.source == "relay", WebhookDelivery.state == "processed") == 2
    assert count(app, Message, Message.wamid.in_([wamid(1), wamid(2)])) == 2
    assert count(app, RelayReceipt) == 2


def test_redelivered_event_is_recognised_and_not_stored_twice(app):
    store(app, [relayed(1), relayed(2)])
    again = store(app, [relayed(1), relayed(2), relayed(3)])
    assert (again.new, again.duplicates) == (1, 2)
    assert count(app, WebhookDelivery) == 3
    assert count(app, Message) == 3


def test_redelivered_event_that_was_never_processed_is_processed_now(app):
    store(app, [relayed(1)], process=False)  # SigDesk stopped between the two commits
    assert count(app, Message) == 0
    again = store(app, [relayed(1)])
    assert again.new == 0 and len(again.pending) == 1
    assert count(app, Message) == 1 and count(app, WebhookDelivery) == 1


def test_forged_event_is_kept_as_a_digest_only_and_never_ingested(app):
    forged = relayed(2, secret="not-the-app-secret")
    stored = store(app, [relayed(1), forged])
    assert stored.quarantined == 1
    with app.extensions["sigdesk"].database.session() as session:
        assert session.scalars(select(WebhookDelivery.raw)).all() == [delivery(1)]
        digest = session.scalars(select(RejectedDelivery)).one()
        assert (digest.source, digest.reason, digest.install, digest.seq) == ("relay", "bad_signature", INSTALL, 2)
        assert digest.size == len(forged.body) and digest.sha256 == hashlib.sha256(forged.body).hexdigest()
        assert receive.quarantined_count(session) == 1
    assert count(app, Message, Message.wamid == wamid(2)) == 0
    again = store(app, [forged])
    assert (again.new, again.duplicates, again.quarantined) == (0, 1, 0)


def test_forged_digests_are_capped_in_number_and_age(app, monkeypatch):
    monkeypatch.setattr(receive, "MAX_REJECTED", 5)
    store(app, [relayed(seq, secret="an-attacker") for seq in range(1, 9)])
    with app.extensions["sigdesk"].database.session() as session:
        assert session.scalars(select(RejectedDelivery.seq).order_by(RejectedDelivery.seq)).all() == [4, 5, 6, 7, 8]
        later = utcnow() + receive.KEEP_REJECTED + timedelta(days=1)
        assert receive.purge_rejected(session, now=later) == 5
        assert receive.quarantined_count(session) == 0


def test_the_worker_purges_old_digests_even_when_no_new_forgery_comes(app):
    store(app, [relayed(1, secret="an-attacker"), relayed(2, secret="an-attacker")])
    with app.extensions["sigdesk"].database.session() as session:
        old = utcnow() - receive.KEEP_REJECTED - timedelta(days=1)
        session.execute(RejectedDelivery.__table__.update().where(RejectedDelivery.seq == 1).values(received_at=old))
        session.commit()
    app.extensions["sigdesk"].worker.run_once()
    assert count(app, RejectedDelivery) == 1
    assert count(app, RejectedDelivery, RejectedDelivery.seq == 2) == 1


def test_replayed_rejected_event_is_let_through_when_it_now_verifies(app):
    store(app, [relayed(1, secret="the-real-secret"), relayed(2, secret="someone-else")], secret="a-wrong-secret")
    assert count(app, WebhookDelivery) == 0
    again = store(
        app, [relayed(1, secret="the-real-secret"), relayed(2, secret="someone-else")], secret="the-real-secret"
    )
    assert [pending.raw for pending in again.pending] == [delivery(1)]
    assert count(app, Message, Message.wamid == wamid(1)) == 1
    assert count(app, WebhookDelivery) == 1
    with app.extensions["sigdesk"].database.session() as session:
        assert receive.quarantined_count(session) == 1
    third = store(app, [relayed(1, secret="the-real-secret")], secret="the-real-secret")
    assert third.duplicates == 1 and count(app, WebhookDelivery) == 1


def test_last_relayed_at_follows_the_newest_receipt(app):
    with app.extensions["sigdesk"].database.session() as session:
        assert receive.last_relayed_at(session, INSTALL) is None
        assert receive.last_relayed_at(session, None) is None
    store(app, [relayed(1)])
    with app.extensions["sigdesk"].database.session() as session:
        assert receive.last_relayed_at(session, INSTALL) is not None
