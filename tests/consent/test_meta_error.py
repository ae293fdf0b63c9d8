"""Meta refusing a marketing send with error 131050 is the customer's own stop: kept as a consent event
tied to the refused message, with a note in the conversation, once however often the send is retried."""

from __future__ import annotations

from sqlalchemy import select

from sigdesk.contacts.commands import MARKETING_STOPPED
from sigdesk.models import ConsentEvent, Contact, Conversation, Note
from sigdesk.outbound import services as outbound
from sigdesk.whatsapp_account.services import client_or_none
from tests import factories
from tests.commanding import events
from tests.outbound.test_sending import APP_SECRET, connect, inbound


def test_error_131050_on_a_send_records_an_opt_out_tied_to_the_message(app, owner, fake_graph):
    connect(app, fake_graph)
    raw, headers = factories.signed(inbound("wamid.IN-ME"), APP_SECRET)
    assert app.test_client().post("/webhooks/whatsapp", data=raw, headers=headers).status_code == 200
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        conversation = session.query(Conversation).one()
        contact_id, conversation_id = conversation.contact_id, conversation.id
        message_id = outbound.queue(session, conversation, "text", {"body": "Spring sale!"}).id
    fake_graph.fail_next(MARKETING_STOPPED)
    with state.database.session() as session:
        outbound.send_due(session, lambda s: client_or_none(s, state.cipher))
    with state.database.session() as session:
        [event] = session.scalars(select(ConsentEvent)).all()
        assert (event.contact_id, event.status, event.source, event.message_id, event.channel) == (
            contact_id,
            "opted_out",
            "meta_error_131050",
            message_id,
            "worker",
        )
        assert event.evidence.startswith("error 131050")
        assert session.get(Contact, contact_id).marketing_consent == "opted_out"
        notes = session.scalars(select(Note.body).where(Note.conversation_id == conversation_id)).all()
        assert any("opted out of marketing messages (meta error 131050" in body for body in notes)
    [announced] = events(app, "consent.recorded")
    assert (announced["source"], announced["previous"]) == ("meta_error_131050", "unknown")
