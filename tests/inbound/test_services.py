import json
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from sigdesk.inbound import services
from sigdesk.models import (
    AccountEvent,
    Contact,
    Conversation,
    Message,
    MessageStatusEvent,
    Reaction,
    Template,
    WebhookDelivery,
)
from tests import factories
from tests.inbox.helpers import deliver

pytestmark = pytest.mark.database

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
ADA = "15551230001"


def body_of(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where))


def message(session, wamid: str) -> Message:
    return session.scalar(select(Message).where(Message.wamid == wamid))


def contact(session, wa_id: str | None = None, user_id: str | None = None) -> Contact:
    column, value = (Contact.wa_id, wa_id) if wa_id else (Contact.user_id, user_id)
    return session.scalar(select(Contact).where(column == value))


def outbound(database, wamid: str, wa_id: str = ADA, status: str = "sent") -> None:
    """An outbound message as the send path would have stored it."""
    with database.session() as session:
        person = contact(session, wa_id) or factories.contact(session, wa_id)
        conversation = session.scalar(select(Conversation).where(Conversation.contact_id == person.id))
        conversation = conversation or factories.conversation(session, person)
        factories.message(session, conversation, "out", wamid=wamid, text="Your order shipped", status=status)


def status_body(wamid: str, status: str, ts: int, errors: list | None = None) -> dict:
    return factories.status_update(wamid, status, ADA, at=ts, errors=errors)


def text_body(
    wamid: str, body: str, ts: int, wa_id: str | None = ADA, user_id: str | None = None, name: str | None = None
) -> dict:
    return factories.text_message(wa_id, body, wamid=wamid, at=ts, name=name, user_id=user_id)


@pytest.fixture
def database(app):
    return app.extensions["sigdesk"].database


# --- messages, contacts, conversations ---------------------------------------------------------


def test_text_message_creates_contact_conversation_and_message(database):
    assert deliver(database, body_of("message_text")) == "processed"
    with database.session() as session:
        ada = contact(session, ADA)
        assert (ada.user_id, ada.profile_name) == ("US.1000000000000000001", "Ada Customer")
        stored = message(session, "wamid.FIX.text.1")
        assert (stored.direction, stored.type, stored.text) == ("in", "text", "Hello, is the shop open today? 🙂")
        assert stored.timestamp == datetime(2024, 11, 15, 19, 46, 40, tzinfo=timezone.utc)
        assert json.loads(stored.raw)["text"]["body"] == stored.text
        conversation = session.get(Conversation, stored.conversation_id)
        assert (conversation.contact_id, conversation.status, conversation.unread_count) == (ada.id, "open", 1)
        assert conversation.last_inbound_at == conversation.last_message_at == stored.timestamp
        assert ada.last_inbound_at == stored.timestamp
        delivery = session.scalar(select(WebhookDelivery))
        assert (delivery.state, delivery.event_count, delivery.attempts, delivery.signature) == (
            "processed",
            1,
            1,
            "sha256=test",
        )


def test_redelivery_changes_nothing(database):
    for _ in range(3):
        deliver(database, body_of("message_text"))
    with database.session() as session:
        assert count(session, Message) == 1
        assert count(session, Contact) == 1
        assert session.scalar(select(Conversation.unread_count)) == 1
        assert count(session, WebhookDelivery) == 3


def test_every_fixture_lands_without_failure(database):
    for path in sorted(FIXTURES.glob("*.json")):
        assert deliver(database, path.read_bytes()) == "processed", path.name
    with database.session() as session:
        types = dict(session.execute(select(Message.type, func.count()).group_by(Message.type)).all())
        assert types == {
            "text": 6,
            "image": 2,
            "video": 1,
            "audio": 1,
            "document": 1,
            "sticker": 1,
            "location": 1,
            "contacts": 1,
            "interactive": 5,
            "button": 1,
            "order": 1,
            "system": 1,
            "unsupported": 1,
            "unknown": 1,
            "edit": 1,
            "revoke": 1,
        }
        assert count(session, MessageStatusEvent) == 7
        assert count(session, Reaction) == 1
        assert count(session, Template) == 3
        assert count(session, WebhookDelivery, WebhookDelivery.state != "processed") == 0


def test_several_entries_changes_and_messages_in_one_delivery_all_land(database):
    deliver(database, body_of("batch_several_entries"))
    with database.session() as session:
        assert {m.wamid for m in session.scalars(select(Message))} == {
            "wamid.FIX.batch.1",
            "wamid.FIX.batch.2",
            "wamid.FIX.batch.3",
        }
        assert count(session, Contact) == 2
        assert count(session, MessageStatusEvent, MessageStatusEvent.wamid == "wamid.FIX.out.9") == 2
        assert session.scalar(select(Template.status).where(Template.name == "batch_template")) == "PAUSED"
        ada_conversation = session.scalar(select(Conversation).join(Contact).where(Contact.wa_id == ADA))
        assert ada_conversation.unread_count == 2


def test_media_message_waits_for_download(database):
    deliver(database, body_of("message_document"))
    with database.session() as session:
        stored = message(session, "wamid.FIX.document.1")
        assert (stored.media_id, stored.mime_type, stored.filename, stored.caption, stored.media_state) == (
            "880000000000004",
            "application/pdf",
            "invoice-2024-11.pdf",
            "My invoice",
            "pending",
        )


def test_voice_and_forward_details_are_kept(database):
    deliver(database, body_of("message_audio_voice"))
    deliver(database, body_of("message_forwarded_referral"))
    with database.session() as session:
        assert json.loads(message(session, "wamid.FIX.voice.1").details)["audio"] == {"voice": True}
        forwarded = message(session, "wamid.FIX.referral.1")
        assert forwarded.forwarded and forwarded.frequently_forwarded
        details = json.loads(forwarded.details)
        assert details["referral"]["headline"] == "Red mugs"
        assert details["context"]["referred_product"]["product_retailer_id"] == "SKU-RED-MUG"


def test_reply_records_the_message_it_answers(database):
    deliver(database, body_of("message_interactive_button_reply"))
    with database.session() as session:
        stored = message(session, "wamid.FIX.button_reply.1")
        assert (stored.reply_to_wamid, stored.text) == ("wamid.FIX.out.1", "Yes, confirm")
        assert json.loads(stored.details)["interactive"]["reply_id"] == "confirm-yes"


def test_flow_reply_keeps_string_and_parsed_answers(database):
    deliver(database, body_of("message_interactive_nfm_reply"))
    with database.session() as session:
        flow = json.loads(message(session, "wamid.FIX.nfm_reply.1").details)["interactive"]
        assert flow["response"] == {"flow_token": "tok-1", "rating": "5", "comment": "Great"}
        assert json.loads(flow["response_json"]) == flow["response"]


def test_order_items_are_kept_with_quantity_price_and_currency(database):
    deliver(database, body_of("message_order"))
    with database.session() as session:
        order = json.loads(message(session, "wamid.FIX.order.1").details)["order"]
        assert order["catalog_id"] == "777000111"
        assert order["items"] == [
            {"product_retailer_id": "SKU-RED-MUG", "quantity": 2, "item_price": "12.5", "currency": "EUR"},
            {"product_retailer_id": "SKU-TEA", "quantity": 3, "item_price": "4.20", "currency": "EUR"},
        ]


def test_unsupported_message_keeps_its_error(database):
    deliver(database, body_of("message_unsupported"))
    with database.session() as session:
        stored = message(session, "wamid.FIX.unsupported.1")
        assert (stored.error_code, stored.error_title) == (131051, "Message type unknown")


def test_contact_known_only_by_user_id_gets_its_wa_id_later(database):
    deliver(database, text_body("w1", "hi", 1731700000, wa_id=None, user_id="US.42", name="Nia"))
    with database.session() as session:
        nia = contact(session, user_id="US.42")
        assert (nia.wa_id, nia.profile_name) == (None, "Nia")
    deliver(database, text_body("w2", "it's me", 1731700100, wa_id="15550004242", user_id="US.42"))
    with database.session() as session:
        assert count(session, Contact) == 1
        assert contact(session, user_id="US.42").wa_id == "15550004242"
        assert count(session, Conversation) == 1


def test_contact_known_by_wa_id_gets_its_user_id_later(database):
    deliver(database, text_body("w1", "hi", 1731700000, wa_id="15550007777"))
    deliver(database, text_body("w2", "again", 1731700100, wa_id="15550007777", user_id="US.77", name="Otto"))
    with database.session() as session:
        otto = contact(session, "15550007777")
        assert (otto.user_id, otto.profile_name) == ("US.77", "Otto")
        assert count(session, Contact) == 1


def test_ids_of_two_different_contacts_are_not_merged(database):
    deliver(database, text_body("w1", "a", 1731700000, wa_id="15550000001"))
    deliver(database, text_body("w2", "b", 1731700001, wa_id=None, user_id="US.9"))
    deliver(database, text_body("w3", "c", 1731700002, wa_id="15550000001", user_id="US.9"))
    with database.session() as session:
        assert count(session, Contact) == 2
        by_user = contact(session, user_id="US.9")
        assert message(session, "w3").contact_id == by_user.id


def test_message_from_nobody_is_kept_as_an_event(database):
    body = {
        "entry": [
            {
                "changes": [
                    {
                        "field": "messages",
                        "value": {"messages": [{"id": "w-anon", "type": "text", "text": {"body": "?"}}]},
                    }
                ]
            }
        ]
    }
    assert deliver(database, body) == "processed"
    with database.session() as session:
        assert count(session, Message) == 0
        assert session.scalar(select(AccountEvent.event)) == "message_without_sender"


def test_changed_number_moves_the_contact(database):
    deliver(database, text_body("w1", "hi", 1731700000, wa_id="15551230002", name="Bob Buyer"))
    deliver(database, body_of("message_system_user_changed_number"))
    with database.session() as session:
        assert contact(session, "15551230022").profile_name == "Bob Buyer"
        assert contact(session, "15551230002") is None
        assert message(session, "wamid.FIX.system.1").text.startswith("Bob Buyer changed")
        assert session.scalar(select(Conversation.unread_count)) == 1


def test_inbound_message_reopens_a_resolved_conversation_and_counts_unread(database):
    deliver(database, text_body("w1", "hi", 1731700000))
    with database.session() as session:
        session.execute(Conversation.__table__.update().values(status="resolved", unread_count=0))
    deliver(database, text_body("w2", "hello?", 1731700500))
    with database.session() as session:
        conversation = session.scalar(select(Conversation))
        assert (conversation.status, conversation.unread_count) == ("open", 1)
        assert conversation.last_inbound_at == datetime.fromtimestamp(1731700500, tz=timezone.utc)


def test_late_message_does_not_move_the_window_backwards(database):
    deliver(database, text_body("w2", "newer", 1731709999))
    deliver(database, text_body("w1", "older", 1731700000))
    with database.session() as session:
        conversation = session.scalar(select(Conversation))
        assert conversation.last_inbound_at == datetime.fromtimestamp(1731709999, tz=timezone.utc)
        assert conversation.unread_count == 2


def test_pending_conversation_stays_pending(database):
    deliver(database, text_body("w1", "hi", 1731700000))
    with database.session() as session:
        session.execute(Conversation.__table__.update().values(status="pending"))
    deliver(database, text_body("w2", "hi again", 1731700001))
    with database.session() as session:
        assert session.scalar(select(Conversation.status)) == "pending"


def test_business_app_echo_is_stored_as_outbound_without_unread(database):
    deliver(database, body_of("message_echo_text"))
    with database.session() as session:
        echo = message(session, "wamid.FIX.echo.1")
        assert (echo.direction, echo.status, echo.text) == ("out", "sent", "Sent from the phone app")
        conversation = session.scalar(select(Conversation))
        assert (conversation.unread_count, conversation.last_inbound_at) == (0, None)
        assert conversation.last_message_at == echo.timestamp


# --- reactions, edits, revokes -----------------------------------------------------------------


def test_reaction_attaches_to_its_target_and_removal_clears_it(database):
    deliver(database, body_of("message_text"))
    deliver(database, body_of("message_reaction"))
    with database.session() as session:
        reaction = session.scalar(select(Reaction))
        assert (reaction.target_wamid, reaction.emoji) == ("wamid.FIX.text.1", "👍")
        assert reaction.contact_id == contact(session, ADA).id
        assert session.scalar(select(Conversation.unread_count)) == 1
    deliver(database, body_of("message_reaction_removed"))
    deliver(database, body_of("message_reaction"))  # a late redelivery of the older reaction
    with database.session() as session:
        assert count(session, Reaction) == 1
        assert session.scalar(select(Reaction.emoji)) is None
        assert count(session, Message) == 1


def test_edit_replaces_the_text_and_keeps_the_original(database):
    deliver(database, body_of("message_text"))
    deliver(database, body_of("message_edit"))
    with database.session() as session:
        edited = message(session, "wamid.FIX.text.1")
        assert edited.text == "Hello, is the shop open tomorrow?"
        assert edited.edited_at == datetime.fromtimestamp(1731701900, tz=timezone.utc)
        assert json.loads(edited.details)["original"]["text"] == "Hello, is the shop open today? 🙂"
        assert session.scalar(select(Conversation.unread_count)) == 1


def test_an_older_edit_never_replaces_a_newer_one(database):
    deliver(database, body_of("message_text"))
    newer = json.loads(body_of("message_edit"))
    older = json.loads(body_of("message_edit"))
    item = older["entry"][0]["changes"][0]["value"]["messages"][0]
    item.update(id="wamid.FIX.edit.0", timestamp="1731701000")
    item["edit"]["message"]["text"]["body"] = "first edit"
    deliver(database, newer)
    deliver(database, older)
    with database.session() as session:
        edited = message(session, "wamid.FIX.text.1")
        assert edited.text == "Hello, is the shop open tomorrow?"
        assert json.loads(edited.details)["original"]["text"] == "Hello, is the shop open today? 🙂"


def test_nobody_edits_someone_elses_message(database):
    deliver(database, body_of("message_text"))
    foreign = json.loads(body_of("message_edit"))
    item = foreign["entry"][0]["changes"][0]["value"]["messages"][0]
    item["from"] = "15559999999"
    del foreign["entry"][0]["changes"][0]["value"]["contacts"]
    deliver(database, foreign)
    with database.session() as session:
        assert message(session, "wamid.FIX.text.1").edited_at is None


def test_revoke_hides_the_body(database):
    deliver(database, body_of("message_image"))
    deliver(database, body_of("message_revoke"))
    with database.session() as session:
        revoked = message(session, "wamid.FIX.image.1")
        assert revoked.revoked_at == datetime.fromtimestamp(1731702000, tz=timezone.utc)
        assert (revoked.text, revoked.caption) == (None, None)
        assert json.loads(revoked.raw)["image"]["caption"] == "Broken part"


def test_edit_or_revoke_before_its_target_is_kept(database):
    deliver(database, body_of("message_revoke"))
    with database.session() as session:
        assert json.loads(message(session, "wamid.FIX.revoke.1").details)["revoke"] == {
            "original_wamid": "wamid.FIX.image.1"
        }


# --- statuses ----------------------------------------------------------------------------------


def test_status_only_moves_up(database):
    outbound(database, "wamid.OUT.1")
    for status, ts in (("read", 3), ("delivered", 2), ("sent", 1)):
        deliver(database, status_body("wamid.OUT.1", status, 1731700000 + ts))
    with database.session() as session:
        assert message(session, "wamid.OUT.1").status == "read"
        assert count(session, MessageStatusEvent) == 3


def test_played_comes_after_read(database):
    outbound(database, "wamid.OUT.voice")
    deliver(database, status_body("wamid.OUT.voice", "played", 1731700003))
    deliver(database, status_body("wamid.OUT.voice", "read", 1731700002))
    with database.session() as session:
        assert message(session, "wamid.OUT.voice").status == "played"


def test_failed_is_terminal_and_keeps_its_error(database):
    outbound(database, "wamid.OUT.2")
    deliver(database, body_of("status_failed").replace(b"wamid.FIX.out.2", b"wamid.OUT.2"))
    deliver(database, status_body("wamid.OUT.2", "delivered", 1731799999))
    with database.session() as session:
        failed = message(session, "wamid.OUT.2")
        assert (failed.status, failed.error_code, failed.error_title) == ("failed", 131047, "Re-engagement message")
        assert "window is closed" in failed.error_explanation


def test_status_is_stored_once_per_wamid_and_status(database):
    for _ in range(3):
        deliver(database, body_of("status_sent"))
    with database.session() as session:
        event = session.scalar(select(MessageStatusEvent))
        assert count(session, MessageStatusEvent) == 1
        assert json.loads(event.pricing)["category"] == "service"
        assert json.loads(event.conversation)["id"] == "c0ffee0000000001"
        assert event.biz_opaque_callback_data == "order-42"


def test_status_before_its_message_is_kept_and_replayed(database):
    deliver(database, status_body("wamid.OUT.early", "delivered", 1731700002))
    outbound(database, "wamid.OUT.early")
    with database.session() as session:
        assert message(session, "wamid.OUT.early").status == "sent"
        services.replay_statuses(session, "wamid.OUT.early")
    with database.session() as session:
        assert message(session, "wamid.OUT.early").status == "delivered"


def test_status_of_an_inbound_wamid_changes_nothing(database):
    deliver(database, body_of("message_text"))
    deliver(database, status_body("wamid.FIX.text.1", "read", 1731700002))
    with database.session() as session:
        assert message(session, "wamid.FIX.text.1").status is None


# --- templates, preferences, account events ----------------------------------------------------


def test_template_updates_create_then_update_the_template(database):
    deliver(database, body_of("template_quality_update"))
    with database.session() as session:
        template = session.scalar(select(Template).where(Template.name == "order_update"))
        assert (template.language, template.quality, template.status, template.meta_id) == (
            "en_US",
            "YELLOW",
            None,
            "1500000000001",
        )
    deliver(database, body_of("template_status_approved"))
    deliver(database, body_of("template_category_update"))
    with database.session() as session:
        template = session.scalar(select(Template).where(Template.name == "order_update"))
        assert (template.status, template.category, template.quality) == ("APPROVED", "MARKETING", "YELLOW")
        assert count(session, Template) == 1


def test_rejected_template_keeps_its_reason(database):
    deliver(database, body_of("template_status_rejected"))
    with database.session() as session:
        template = session.scalar(select(Template))
        assert (template.status, template.rejected_reason, template.category) == (
            "REJECTED",
            "INVALID_FORMAT",
            "MARKETING",
        )


def test_redelivered_template_event_does_not_undo_a_later_one(database):
    approved = body_of("template_status_approved")
    paused = json.loads(approved)
    paused["entry"][0]["time"] = 1731699999
    paused["entry"][0]["changes"][0]["value"]["event"] = "PAUSED"
    deliver(database, approved)
    deliver(database, paused)
    deliver(database, approved)
    with database.session() as session:
        assert session.scalar(select(Template.status)) == "PAUSED"


def test_marketing_stop_and_resume(database):
    deliver(database, body_of("user_preferences_stop"))
    with database.session() as session:
        bob = contact(session, "15551230002")
        assert bob.opted_out_marketing is True
        assert bob.opted_out_changed_at == datetime.fromtimestamp(1731705000, tz=timezone.utc)
        assert bob.profile_name == "Bob Buyer"
    deliver(database, body_of("user_preferences_resume"))
    deliver(database, body_of("user_preferences_stop"))  # older, delivered late
    with database.session() as session:
        assert contact(session, "15551230002").opted_out_marketing is False


def test_account_update_and_calls_are_recorded_once_for_admins(database):
    for _ in range(2):
        deliver(database, body_of("account_update"))
        deliver(database, body_of("calls_connect"))
    with database.session() as session:
        events = session.execute(select(AccountEvent.field, AccountEvent.event).order_by(AccountEvent.id)).all()
        assert events == [("account_update", "ACCOUNT_VIOLATION"), ("calls", "connect")]
        payload = json.loads(session.scalar(select(AccountEvent.payload).where(AccountEvent.field == "account_update")))
        assert payload["violation_info"]["violation_type"] == "SCAM"


# --- deliveries --------------------------------------------------------------------------------


def test_body_that_is_not_an_object_is_quarantined_and_kept(database):
    assert deliver(database, b"[1, 2, 3]") == "quarantined"
    with database.session() as session:
        delivery = session.scalar(select(WebhookDelivery))
        assert (delivery.state, delivery.raw, delivery.size) == ("quarantined", b"[1, 2, 3]", 9)
        assert "not an object" in delivery.error


def test_stored_delivery_can_be_processed_from_its_raw_copy(database):
    with database.session() as session:
        delivery_id = services.store_delivery(session, body_of("message_text"), None, source="relay")
    with database.session() as session:
        assert services.apply_delivery(session, delivery_id) == "processed"
    with database.session() as session:
        assert session.get(WebhookDelivery, delivery_id).source == "relay"
        assert count(session, Message) == 1


def test_processing_a_missing_delivery_is_an_error(database):
    with database.session() as session, pytest.raises(LookupError):
        services.apply_delivery(session, 12345, b"{}")


def _install_failing_trigger(database) -> None:
    with database.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.execute(
                text(
                    "CREATE TRIGGER boom BEFORE INSERT ON messages WHEN NEW.wamid = 'wamid.boom' "
                    "BEGIN SELECT RAISE(ABORT, 'boom'); END"
                )
            )
        else:
            connection.execute(
                text(
                    "CREATE TRIGGER boom BEFORE INSERT ON messages FOR EACH ROW BEGIN "
                    "IF NEW.wamid = 'wamid.boom' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'boom'; END IF; END"
                )
            )


def test_failed_processing_leaves_the_delivery_stored_and_marked(database):
    _install_failing_trigger(database)
    try:
        raw = json.dumps(text_body("wamid.boom", "secret words", 1731700000)).encode()
        with database.session() as session:
            delivery_id = services.store_delivery(session, raw, None)
        session = database.sessionmaker()
        try:
            with pytest.raises(Exception):  # noqa: B017 - any driver error
                services.apply_delivery(session, delivery_id, raw)
            session.rollback()
            services.mark_failed(session, delivery_id, RuntimeError("database refused"))
            session.commit()
        finally:
            session.close()
        with database.session() as session:
            delivery = session.get(WebhookDelivery, delivery_id)
            assert (delivery.state, delivery.raw) == ("failed", raw)
            assert "database refused" in delivery.error
            assert count(session, Contact) == 0
    finally:
        with database.engine.begin() as connection:
            connection.execute(text("DROP TRIGGER boom"))


def test_error_descriptions_leave_out_bound_values(database):
    _install_failing_trigger(database)
    try:
        raw = json.dumps(text_body("wamid.boom", "secret words", 1731700000)).encode()
        with database.session() as session:
            delivery_id = services.store_delivery(session, raw, None)
        with database.session() as session, pytest.raises(Exception) as failure:
            services.apply_delivery(session, delivery_id, raw)
        described = services.describe_error(failure.value)
        assert "boom" in described
        assert "secret words" not in described and "secret words" not in str(failure.value)
        assert isinstance(failure.value, DBAPIError)  # wrapped as SQLAlchemy wraps driver errors
    finally:
        with database.engine.begin() as connection:
            connection.execute(text("DROP TRIGGER boom"))


def test_bad_signatures_are_counted(database):
    with database.session() as session:
        services.count_rejected(session)
        services.count_rejected(session)
    with database.session() as session:
        assert services.rejected_count(session) == 2


def test_verify_token_is_made_once(app, database):
    cipher = app.extensions["sigdesk"].cipher
    with database.session() as session:
        first = services.ensure_verify_token(session, cipher)
    with database.session() as session:
        assert services.ensure_verify_token(session, cipher) == first
    assert len(first) >= 24


def test_concurrent_deliveries_from_a_new_customer_make_one_contact(database):
    bodies = [
        json.dumps(
            text_body(
                f"wamid.race.{n}", f"message {n}", 1731700000 + n, wa_id="15550101010", user_id="US.race", name="Racer"
            )
        ).encode()
        for n in range(12)
    ]
    bodies += bodies[:4]  # and some redeliveries racing their originals
    errors: list[BaseException] = []
    start = threading.Barrier(len(bodies))

    def worker(raw: bytes) -> None:
        try:
            start.wait()
            for attempt in range(5):
                session = database.sessionmaker()
                try:
                    with services.write_lock(session):
                        delivery_id = services.store_delivery(session, raw, None)
                        session.commit()
                        services.apply_delivery(session, delivery_id, raw)
                        session.commit()
                    return
                except Exception as exc:  # noqa: BLE001
                    session.rollback()
                    if not services.is_transient(exc) or attempt == 4:
                        raise
                finally:
                    session.close()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(raw,)) for raw in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with database.session() as session:
        assert count(session, Contact) == 1
        assert count(session, Conversation) == 1
        assert count(session, Message) == 12
        assert session.scalar(select(Conversation.unread_count)) == 12
        latest = session.scalar(select(Conversation.last_inbound_at))
        assert latest == datetime.fromtimestamp(1731700011, tz=timezone.utc)
        assert latest - timedelta(seconds=11) == datetime.fromtimestamp(1731700000, tz=timezone.utc)
