"""STOP and START keywords: a customer's whole message, in any case and with or without accents, opts
them out of marketing or back in, read by an outbox consumer on the worker (never in the webhook)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from sigdesk.consent.services import fold, keyword_set, keyword_status
from sigdesk.models import ConsentEvent, Contact, Conversation, Note, OutboxCursor
from sigdesk.settings import services as settings
from sigdesk.settings.specs import DEFAULT_START_KEYWORDS, DEFAULT_STOP_KEYWORDS, SettingError, parse_keywords
from tests.commanding import audit, events
from tests import factories
from tests.outbound.test_sending import APP_SECRET, CUSTOMER, connect, first_conversation, inbound, post_webhook
from tests.waiting import wait_for

STOP = keyword_set(DEFAULT_STOP_KEYWORDS)
START = keyword_set(DEFAULT_START_KEYWORDS)


@pytest.mark.parametrize(
    "text",
    ["STOP", "stop", "  Stop!  ", "ARRÊT", "arret", "Baja", "PARAR.", "stopp", "Abmelden", "unsubscribe", "OPT  OUT"],
)
def test_a_whole_message_that_is_a_stop_keyword_opts_out(text):
    assert keyword_status(text, STOP, START) == "opted_out"


@pytest.mark.parametrize("text", ["START", "start", "Alta", "iniciar", " ANMELDEN ", "Subscribe!"])
def test_a_whole_message_that_is_a_start_keyword_opts_back_in(text):
    assert keyword_status(text, STOP, START) == "opted_in"


@pytest.mark.parametrize(
    "text",
    ["Please don't stop", "stop sending me this", "I want to start an order", "STOPPING", "", None, "🛑", "x" * 5000],
)
def test_a_keyword_inside_a_sentence_or_anything_else_is_not_a_keyword(text):
    assert keyword_status(text, STOP, START) is None


def test_keywords_are_compared_without_case_accents_or_surrounding_punctuation():
    assert fold("  ¡ARRÊT!  ") == "arret" and fold("Opt   Out") == "opt out" and fold("Désabonner") == "desabonner"


def test_the_keyword_settings_take_a_comma_separated_list_and_refuse_overlong_entries():
    assert parse_keywords("stop,  Halt \n quit,,stop") == "stop, Halt, quit"
    assert parse_keywords("") == ""
    with pytest.raises(SettingError, match="too long"):
        parse_keywords("a" * 65)
    assert {"stop", "stopp", "parar", "baja", "arret", "unsubscribe", "desuscribir", "cancelar", "abmelden"} <= STOP
    assert {"start", "alta", "iniciar", "anmelden"} <= START and not STOP & START


def feed(app) -> None:
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        state.outbox(session)


def webhook(app, wamid: str, text: str, when: float) -> None:
    raw, headers = factories.signed(inbound(wamid, content={"body": text}, when=when), APP_SECRET)
    assert app.test_client().post("/webhooks/whatsapp", data=raw, headers=headers).status_code == 200


@pytest.mark.database
def test_the_consumer_records_a_keyword_once_even_when_offered_again_and_follows_the_setting(app, fake_graph):
    state = app.extensions["sigdesk"]
    connect(app, fake_graph)
    feed(app)  # the consumer reads what happens from now on
    with state.database.session() as session:
        settings.set_text(session, state.cipher, "consent.stop_keywords", "HALT, basta")
    webhook(app, "wamid.C1", "STOP", time.time() - 20)  # no longer a keyword here
    webhook(app, "wamid.C2", "Basta", time.time() - 10)
    feed(app)
    with state.database.session() as session:
        [event] = session.scalars(select(ConsentEvent)).all()
        assert (event.status, event.source, event.evidence, event.channel) == (
            "opted_out",
            "whatsapp_keyword",
            "Basta",
            "worker",
        )
        conversation_id = session.scalar(select(Conversation.id))
        cursor = session.get(OutboxCursor, "consent keywords")
        cursor.last_id = 0  # at-least-once: the same events offered again
    feed(app)
    with state.database.session() as session:
        assert len(session.scalars(select(ConsentEvent)).all()) == 1
        notes = session.scalars(select(Note.body).where(Note.conversation_id == conversation_id)).all()
        assert len(notes) == 1 and "opted out of marketing" in notes[0]
    assert len(audit(app, "contact.marketing_opt_out")) == 1 and len(events(app, "consent.recorded")) == 1
    assert [event["kind"] for event in events(app, "note.added")] == ["activity"]


def consent_of(app, wa_id: str) -> str | None:
    with app.extensions["sigdesk"].database.session() as session:
        return session.scalar(select(Contact.marketing_consent).where(Contact.wa_id == wa_id))


@pytest.mark.database
def test_stop_from_a_signed_webhook_opts_out_through_the_worker_and_shows_in_the_inbox(app, api, auth):
    wait_for(lambda: _cursor_ready(app))  # the consumer reads from its first pass on
    now = time.time()
    post_webhook(api.live_server.url, inbound("wamid.KW1", content={"body": "  Arrêt "}, when=now - 30))
    conversation = first_conversation(api)
    wait_for(lambda: consent_of(app, CUSTOMER) == "opted_out")
    with app.extensions["sigdesk"].database.session() as session:
        contact_id = session.scalar(select(Conversation.contact_id).where(Conversation.id == conversation["id"]))
    history = api.get(f"/contacts/{contact_id}/consent").json()["items"]
    assert [(e["status"], e["source"], e["evidence"], e["channel"]) for e in history] == [
        ("opted_out", "whatsapp_keyword", "Arrêt", "worker")
    ]
    assert history[0]["message_id"] is not None
    panel = auth.client.get(f"/inbox/c/{conversation['id']}/panel").get_data(as_text=True)
    assert "Opted out of marketing" in panel and 'data-marketing-consent="opted_out"' in panel
    assert "opted out of marketing messages" in panel  # the note in the conversation's history

    post_webhook(api.live_server.url, inbound("wamid.KW2", content={"body": "please don't stop"}, when=now - 20))
    post_webhook(api.live_server.url, inbound("wamid.KW3", content={"body": "START"}, when=now - 10))
    wait_for(lambda: consent_of(app, CUSTOMER) == "opted_in")
    statuses = [e["status"] for e in api.get(f"/contacts/{contact_id}/consent").json()["items"]]
    assert statuses == ["opted_in", "opted_out"]
    panel = auth.client.get(f"/inbox/c/{conversation['id']}/panel").get_data(as_text=True)
    assert "Opted out of marketing" not in panel


def _cursor_ready(app) -> bool:
    with app.extensions["sigdesk"].database.session() as session:
        return session.get(OutboxCursor, "consent keywords") is not None


def test_the_webhook_answers_without_reading_keywords(app, api):
    """Ingest records the message and its event only: the consent row appears later, from the worker."""
    app.extensions["sigdesk"].worker.stop()
    post_webhook(api.live_server.url, inbound("wamid.KW9", content={"body": "STOP"}, when=time.time()))
    time.sleep(0.3)
    assert consent_of(app, CUSTOMER) == "unknown"
