"""Every outgoing WhatsApp message goes through here: checked, stored as queued, then sent by the worker.

The exact Graph payload is stored before the first attempt, so a retry sends the same bytes and
a crash cannot turn one message into two: a message found in 'sending' after a restart is never
re-sent blindly; it waits for Meta's status webhook (matched by biz_opaque_callback_data) and is
otherwise marked as needing a human decision.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.consent.commands import OPTED_OUT, record_consent
from sigdesk.contacts.commands import MARKETING_STOPPED
from sigdesk.outbound.window import window_open
from sigdesk.inbound.services import replay_statuses
from sigdesk.db import dump_json, read_json, utcnow, write_lock
from sigdesk.errors import Refused
from sigdesk.events.catalogue import ConversationRead, MessageSent
from sigdesk.events.outbox import Stored, record
from sigdesk.settings import services as settings
from sigdesk.message_templates import services as message_templates
from sigdesk.models import (
    Contact,
    Conversation,
    Direction,
    MediaState,
    Message,
    MessageStatus,
    Template,
    UploadedMedia,
)
from sigdesk.whatsapp.client import InvalidMessage, validate_message
from sigdesk.whatsapp.errors import GraphError

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BATCH = 20
INTERRUPTED = "SigDesk stopped while this message was being sent, so it may or may not have reached the customer. Check their chat before sending it again."
WINDOW_CLOSED = (
    "The 24-hour customer service window is closed: WhatsApp only allows approved templates until the customer writes again. "
    "Send a template instead."
)
MEDIA_KINDS = ("image", "video", "audio", "document", "sticker")
FREE_FORM = {
    "text",
    "image",
    "video",
    "audio",
    "document",
    "sticker",
    "interactive",
    "reaction",
    "location",
    "contacts",
}


class SendRefused(Refused):
    """The message cannot be sent as asked; the text tells the user what to do instead."""


class Sender(Protocol):
    def send_payload(self, payload: dict[str, Any]) -> str: ...

    def mark_read(self, wamid: str) -> None: ...


def backoff(attempt: int) -> timedelta:
    return timedelta(seconds=min(2**attempt, 300))


def _recipient(contact: Contact) -> str:
    if contact.wa_id:
        return contact.wa_id
    raise SendRefused("This contact has no WhatsApp number on record, so SigDesk cannot write to them first.")


def queue(
    session: Session,
    conversation: Conversation,
    kind: str,
    content: dict[str, Any],
    author_id: int | None = None,
    reply_to_wamid: str | None = None,
    now: datetime | None = None,
) -> Message:
    """Check Meta's rules that SigDesk can know in advance, then store the message as queued."""
    now = now or utcnow()
    contact = session.get(Contact, conversation.contact_id)
    if kind not in FREE_FORM and kind != "template":
        raise SendRefused(f"Unknown message type '{kind}'")
    if kind in FREE_FORM and not window_open(conversation, now):
        raise SendRefused(WINDOW_CLOSED)
    template = _check_template(session, contact, content) if kind == "template" else None
    try:
        validate_message(kind, content["contacts"] if kind == "contacts" else content)
    except (InvalidMessage, KeyError, TypeError) as exc:
        raise SendRefused(str(exc) if isinstance(exc, InvalidMessage) else "Send at least one contact card") from exc
    payload: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": _recipient(contact),
        "type": kind,
        kind: content["contacts"] if kind == "contacts" else content,
    }
    ref = uuid.uuid4().hex
    payload["biz_opaque_callback_data"] = ref
    if reply_to_wamid:
        payload["context"] = {"message_id": reply_to_wamid}
    message = Message(
        wamid=None,
        client_ref=ref,
        conversation_id=conversation.id,
        contact_id=contact.id,
        direction=Direction.OUT.value,
        type=kind,
        text=_text_of(kind, content, template),
        caption=content.get("caption") if isinstance(content, dict) else None,
        details=dump_json(content),
        payload=dump_json(payload),
        reply_to_wamid=reply_to_wamid,
        status=MessageStatus.QUEUED.value,
        author_id=author_id,
        attempts=0,
        next_attempt_at=now,
        timestamp=now,
    )
    _attach_upload(session, message, kind, content)
    session.add(message)
    conversation.last_message_at = now
    if contact.first_outbound_at is None or now < contact.first_outbound_at:
        contact.first_outbound_at = now
    if contact.last_outbound_at is None or now > contact.last_outbound_at:
        contact.last_outbound_at = now
    session.flush()
    return message


def _attach_upload(session: Session, message: Message, kind: str, content: dict[str, Any]) -> None:
    """A media message sent by the id of a file uploaded through SigDesk shows our copy of it, not
    'sent from another device'."""
    media_id = content.get("id") if kind in MEDIA_KINDS else None
    if not isinstance(media_id, str) or not media_id:
        return
    upload = session.scalar(select(UploadedMedia).where(UploadedMedia.media_id == media_id))
    if upload is None:
        return
    message.storage_key = upload.storage_key
    message.media_state = MediaState.READY.value
    message.mime_type = upload.mime_type
    message.file_size = upload.file_size
    filename = content.get("filename") if isinstance(content.get("filename"), str) else upload.filename
    message.filename = filename[:255] if filename else None


def _text_of(kind: str, content: dict[str, Any], template: Template | None = None) -> str | None:
    """The words the customer reads, for the thread, previews and search: a template's header, body and
    footer with the sent values in place (its name only when the template cannot be read)."""
    if kind == "text":
        return content.get("body")
    if kind == "interactive":
        return (content.get("body") or {}).get("text")
    if kind == "template":
        return message_templates.sent_text(template, content) or f"[template {content.get('name')}]"
    return None


def _check_template(session: Session, contact: Contact, content: dict[str, Any]) -> Template:
    name = content.get("name")
    language = (content.get("language") or {}).get("code")
    template = session.scalar(select(Template).where(Template.name == name, Template.language == language))
    if template is None:
        raise SendRefused(f"There is no template '{name}' in {language}. Sync templates from Meta first.")
    if (template.status or "").upper() != "APPROVED":
        raise SendRefused(
            f"The template '{name}' is {(template.status or 'not approved').lower()}; only approved templates can be sent."
        )
    if (template.category or "").upper() == "MARKETING" and contact.opted_out_marketing:
        raise SendRefused(
            "This customer has stopped marketing messages; send a utility template or wait for them to write."
        )
    message_templates.check(template, content)
    return template


def recover_interrupted(session: Session) -> int:
    """At start: a message left in 'sending' may have reached Meta; never send it again on our own."""
    result = session.execute(
        update(Message)
        .where(
            Message.direction == Direction.OUT.value,
            Message.status == MessageStatus.SENDING.value,
            Message.wamid.is_(None),
        )
        .values(status=MessageStatus.FAILED.value, error_explanation=INTERRUPTED, next_attempt_at=None)
    )
    return result.rowcount or 0


def send_due(session: Session, sender_for: Callable[[Session], Sender | None], now: datetime | None = None) -> int:
    """One worker pass: claim due messages, mark them 'sending' (committed), then call Meta; each outcome
    is recorded with a message.sent event."""
    now = now or utcnow()
    due = list(
        session.scalars(
            select(Message.id)
            .where(Message.status == MessageStatus.QUEUED.value, Message.next_attempt_at <= now)
            .order_by(Message.next_attempt_at, Message.id)
            .limit(BATCH)
        )
    )
    if not due:
        return 0
    sender = sender_for(session)
    try:
        return _send_claimed(session, sender, due)
    finally:
        if sender is not None and hasattr(sender, "close"):
            sender.close()


def _send_claimed(session: Session, sender: Sender | None, due: list[int]) -> int:
    session.commit()  # end the read that found the work: each write below starts its own transaction
    handled = 0
    for message_id in due:
        with write_lock(session):
            claimed = session.execute(
                update(Message)
                .where(Message.id == message_id, Message.status == MessageStatus.QUEUED.value)
                .values(status=MessageStatus.SENDING.value, attempts=Message.attempts + 1)
            ).rowcount
            session.commit()
        if not claimed:
            continue
        handled += 1
        payload = session.scalar(select(Message.payload).where(Message.id == message_id))
        session.commit()
        outcome = _call(sender, payload)  # the network call holds no lock and no transaction
        with write_lock(session):
            message = session.get(Message, message_id)
            session.refresh(message)
            _record(session, message, outcome)
            assignee_id = session.scalar(
                select(Conversation.assignee_id).where(Conversation.id == message.conversation_id)
            )
            record(
                session,
                MessageSent(message.conversation_id, assignee_id, message.id, message.status, message.error_code),
            )
            session.commit()
    return handled


def _call(sender: Sender | None, payload: str) -> str | Exception:
    if sender is None:
        return ValueError(
            "WhatsApp is not connected: set the access token and phone number ID in Settings → Connection."
        )
    try:
        request = read_json(payload, dict, "messages.payload")
        if not request:
            return ValueError("The queued message is unreadable; write it again.")
        return sender.send_payload(request)
    except (GraphError, ValueError) as error:
        return error


def _record(session: Session, message: Message, outcome: str | Exception) -> None:
    if isinstance(outcome, GraphError):
        if outcome.retryable and message.attempts < MAX_ATTEMPTS:
            message.status = MessageStatus.QUEUED.value
            message.next_attempt_at = utcnow() + backoff(message.attempts)
            message.error_code = outcome.code
            message.error_explanation = outcome.human_retrying
            log.info("send of message %s deferred (code %s, attempt %s)", message.id, outcome.code, message.attempts)
        else:
            _fail(message, outcome.code, outcome.human, outcome.title)
            if outcome.code == MARKETING_STOPPED:
                record_consent(
                    session,
                    Actor.system(),
                    message.contact_id,
                    OPTED_OUT,
                    "meta_error_131050",
                    f"error {MARKETING_STOPPED}: {outcome.title or 'marketing messages stopped'}"[:200],
                    message_id=message.id,
                    conversation_id=message.conversation_id,
                )
        return
    if isinstance(outcome, Exception):
        _fail(message, None, str(outcome))
        return
    message.wamid = outcome
    message.status = MessageStatus.SENT.value
    message.next_attempt_at = None
    message.error_code = None
    message.error_explanation = None
    session.flush()
    apply_early_statuses(session, message)


def _fail(message: Message, code: int | None, explanation: str, title: str | None = None) -> None:
    message.status = MessageStatus.FAILED.value
    message.next_attempt_at = None
    message.error_code = code
    message.error_title = title
    message.error_explanation = explanation
    log.info("message %s failed (code %s)", message.id, code)


def apply_early_statuses(session: Session, message: Message) -> None:
    """Statuses can arrive before Meta's send response is stored; apply any already kept."""
    replay_statuses(session, message.wamid)


def retry(session: Session, message: Message, now: datetime | None = None) -> None:
    """A person decided to send a failed message again (after checking the customer's chat)."""
    if message.direction != Direction.OUT.value or message.status != MessageStatus.FAILED.value:
        raise SendRefused("Only failed outgoing messages can be sent again")
    conversation = session.get(Conversation, message.conversation_id)
    if message.type != "template" and not window_open(conversation, now):
        raise SendRefused(WINDOW_CLOSED)
    message.status = MessageStatus.QUEUED.value
    message.attempts = 0
    message.next_attempt_at = now or utcnow()
    message.error_code = message.error_title = message.error_explanation = None
    session.flush()


def mark_read(session: Session, conversation: Conversation, sender: Sender | None, receipts: bool) -> None:
    """Clear the unread count; tell the customer only when the business wants read receipts."""
    conversation.unread_count = 0
    session.flush()
    if receipts and sender is not None:
        send_read_receipt(session, conversation, sender)


def send_read_receipt(session: Session, conversation: Conversation, sender: Sender) -> None:
    """Tell the customer their latest message was read; a network call, so keep it outside writes."""
    latest = session.scalar(
        select(Message.wamid)
        .where(
            Message.conversation_id == conversation.id,
            Message.direction == Direction.IN.value,
            Message.wamid.is_not(None),
        )
        .order_by(Message.timestamp.desc(), Message.id.desc())
        .limit(1)
    )
    if latest:
        try:
            sender.mark_read(latest)
        except GraphError as error:
            log.info("read receipt not sent (code %s)", error.code)


class ReadReceipts:
    """The outbox consumer that tells customers their messages were read, when the business sends receipts.

    It runs on the worker, so marking a conversation read never waits on Meta; a receipt lost to a crash
    is sent again (Meta takes a repeated receipt as it takes the first)."""

    EVENTS = (ConversationRead.name,)

    def __init__(self, cipher, sender_for: Callable[[Session], Sender | None]) -> None:
        self.cipher = cipher
        self.sender_for = sender_for

    def __call__(self, session: Session, events: list[Stored]) -> None:
        if not settings.get(session, self.cipher, "whatsapp.read_receipts"):
            return
        sender = self.sender_for(session)
        if sender is None:
            return
        try:
            for conversation_id in dict.fromkeys(item.event.conversation_id for item in events):
                conversation = session.get(Conversation, conversation_id)
                if conversation is not None:
                    send_read_receipt(session, conversation, sender)
        finally:
            if hasattr(sender, "close"):
                sender.close()
