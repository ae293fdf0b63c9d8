"""Every outgoing WhatsApp message goes through here: checked, stored as queued, then sent by the worker.

The exact Graph payload is stored before the first attempt, so a retry sends the same bytes and
a crash cannot turn one message into two: a message found in 'sending' after a restart is never
re-sent blindly; it waits for Meta's status webhook (matched by biz_opaque_callback_data) and is
otherwise marked as needing a human decision.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import insert, or_, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, load_only
from sqlalchemy.orm.attributes import set_committed_value

from sigdesk.actor import Actor
from sigdesk.consent.commands import OPTED_OUT, record_consent
from sigdesk.contacts.commands import MARKETING_STOPPED
from sigdesk.outbound.window import window_open
from sigdesk.inbound.services import replay_statuses
from sigdesk.db import dump_json, update_rows, utcnow, write_lock
from sigdesk.errors import Refused, UserError
from sigdesk.events.catalogue import ConversationRead, MessageSent
from sigdesk.events.outbox import Stored, record
from sigdesk.settings import services as settings
from sigdesk.message_templates import services as message_templates
from sigdesk.models import (
    Contact,
    Conversation,
    ConversationStatus,
    Direction,
    MediaState,
    Message,
    MessageStatus,
    MessageStatusEvent,
    Template,
    UploadedMedia,
)
from sigdesk.whatsapp.client import InvalidMessage, send_stored, validate_message
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
    broadcast_id: int | None = None,
) -> Message:
    """Check Meta's rules that SigDesk can know in advance, then store the message as queued. A message of a
    broadcast (`broadcast_id`) is sent, paced, by the broadcast engine rather than by send_due."""
    now = now or utcnow()
    contact = session.get(Contact, conversation.contact_id)
    if kind not in FREE_FORM and kind != "template":
        raise SendRefused(f"Unknown message type '{kind}'")
    if kind in FREE_FORM and not window_open(conversation, now):
        raise SendRefused(WINDOW_CLOSED)
    template = _check_template(session, contact, content) if kind == "template" else None
    message = _message(contact, conversation.id, kind, content, template, author_id, reply_to_wamid, now, broadcast_id)
    _attach_upload(session, message, kind, content)
    session.add(message)
    conversation.last_message_at = now
    if contact.first_outbound_at is None or now < contact.first_outbound_at:
        contact.first_outbound_at = now
    if contact.last_outbound_at is None or now > contact.last_outbound_at:
        contact.last_outbound_at = now
    session.flush()
    return message


def _message(
    contact: Contact,
    conversation_id: int,
    kind: str,
    content: dict[str, Any],
    template: Template | None,
    author_id: int | None,
    reply_to_wamid: str | None,
    now: datetime,
    broadcast_id: int | None,
    ref: str | None = None,
) -> Message:
    """The queued row with the exact Graph payload, built the same way for every sender."""
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
    ref = ref or uuid.uuid4().hex
    payload["biz_opaque_callback_data"] = ref
    if reply_to_wamid:
        payload["context"] = {"message_id": reply_to_wamid}
    return Message(
        wamid=None,
        client_ref=ref,
        conversation_id=conversation_id,
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
        created_at=now,
        broadcast_id=broadcast_id,
    )


def conversation_ids(session: Session, contact_ids: Sequence[int], now: datetime | None = None) -> dict[int, int]:
    """Each contact's one conversation, opened (as ingest opens one) for those who have none yet."""
    wanted = sorted(set(contact_ids))
    if not wanted:
        return {}
    found = dict(
        session.execute(
            select(Conversation.contact_id, Conversation.id).where(Conversation.contact_id.in_(wanted))
        ).all()
    )
    missing = [contact_id for contact_id in wanted if contact_id not in found]
    if missing:
        table = Conversation.__table__
        opened = now or utcnow()
        if session.get_bind().dialect.name == "sqlite":
            statement = sqlite_insert(table).on_conflict_do_nothing()
        else:
            statement = insert(table).prefix_with("IGNORE")  # another writer (ingest) may open one meanwhile
        session.execute(
            statement,
            [
                {
                    "contact_id": contact_id,
                    "status": ConversationStatus.OPEN.value,
                    "unread_count": 0,
                    "created_at": opened,
                }
                for contact_id in missing
            ],
        )
        found.update(
            session.execute(
                select(Conversation.contact_id, Conversation.id).where(Conversation.contact_id.in_(missing))
            ).all()
        )
    return found


@dataclass(frozen=True)
class Outgoing:
    """One template message of a batch: to whom (the contact and its conversation) and the filled template."""

    contact_id: int
    conversation_id: int
    content: dict[str, Any]


def queue_templates(
    session: Session,
    template: Template,
    outgoing: Sequence[Outgoing],
    broadcast_id: int | None = None,
    now: datetime | None = None,
) -> list[Message | SendRefused]:
    """queue() for many template messages at once (a broadcast's batch): the same checks and the same rows,
    with one read of the contacts and one multi-row insert. Each item answers its message (stored, with its
    id, but not kept in the session) or why it was refused."""
    now = now or utcnow()
    if not outgoing:
        return []
    contacts = {
        contact.id: contact
        for contact in session.scalars(
            select(Contact)
            .options(load_only(Contact.id, Contact.wa_id, Contact.opted_out_marketing))  # what the checks read
            .where(Contact.id.in_({item.contact_id for item in outgoing}))
        )
    }
    answers: list[Message | SendRefused] = []
    randomness = os.urandom(16 * len(outgoing))  # one read for the batch's callback references
    for place, item in enumerate(outgoing):
        contact = contacts.get(item.contact_id)
        ref = uuid.UUID(bytes=randomness[16 * place : 16 * place + 16], version=4).hex
        try:
            if contact is None:
                raise SendRefused("The contact was deleted.")
            _check_template_for(template, contact, item.content)
            message = _message(
                contact, item.conversation_id, "template", item.content, template, None, None, now, broadcast_id, ref
            )
        except UserError as refused:
            answers.append(refused if isinstance(refused, SendRefused) else SendRefused(str(refused)))
            continue
        answers.append(message)
    made = [answer for answer in answers if isinstance(answer, Message)]
    if made:
        session.execute(insert(Message.__table__), [_row(message) for message in made])
        ids = dict(
            session.execute(
                select(Message.client_ref, Message.id).where(Message.client_ref.in_([m.client_ref for m in made]))
            ).all()
        )
        for message in made:
            message.id = ids[message.client_ref]
    sent_to = [answer.contact_id for answer in answers if isinstance(answer, Message)]
    conversations = [answer.conversation_id for answer in answers if isinstance(answer, Message)]
    if sent_to:
        session.execute(
            update(Conversation)
            .where(
                Conversation.id.in_(conversations),
                or_(Conversation.last_message_at.is_(None), Conversation.last_message_at < now),
            )
            .values(last_message_at=now)
            .execution_options(synchronize_session=False)
        )
        session.execute(
            update(Contact)
            .where(Contact.id.in_(sent_to), Contact.first_outbound_at.is_(None))
            .values(first_outbound_at=now)
            .execution_options(synchronize_session=False)
        )
        session.execute(
            update(Contact)
            .where(Contact.id.in_(sent_to), or_(Contact.last_outbound_at.is_(None), Contact.last_outbound_at < now))
            .values(last_outbound_at=now)
            .execution_options(synchronize_session=False)
        )
    return answers


def _row(message: Message) -> dict[str, Any]:
    """A message not added to a session as an INSERT's values, with the columns' defaults filled in."""
    values: dict[str, Any] = {}
    for column in Message.__table__.columns:
        if column.key == "id":
            continue
        value = getattr(message, column.key)
        if value is None and column.default is not None and column.default.is_scalar:
            value = column.default.arg
        values[column.key] = value
    return values


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
    _check_template_for(template, contact, content)
    return template


def _check_template_for(template: Template, contact: Contact, content: dict[str, Any]) -> None:
    name = content.get("name")
    if (template.status or "").upper() != "APPROVED":
        raise SendRefused(
            f"The template '{name}' is {(template.status or 'not approved').lower()}; only approved templates can be sent."
        )
    if (template.category or "").upper() == "MARKETING" and contact.opted_out_marketing:
        raise SendRefused(
            "This customer has stopped marketing messages; send a utility template or wait for them to write."
        )
    message_templates.check(template, content)


def recover_interrupted(session: Session) -> int:
    """At start: a message left in 'sending' may have reached Meta; never send it again on our own. A
    broadcast's messages are left to the broadcast engine's recovery, whose release journal knows which of
    them never left."""
    result = session.execute(
        update(Message)
        .where(
            Message.direction == Direction.OUT.value,
            Message.status == MessageStatus.SENDING.value,
            Message.wamid.is_(None),
            Message.broadcast_id.is_(None),
        )
        .values(status=MessageStatus.FAILED.value, error_explanation=INTERRUPTED, next_attempt_at=None)
    )
    return result.rowcount or 0


# Waits, before each send of the inbox's sender, for the number's share of Meta's throughput (the broadcast
# engine takes from the same bucket); set by the broadcasts feature, so outbound needs not import it.
_pacer: Callable[[Session], None] | None = None


def set_pacer(pacer: Callable[[Session], None] | None) -> None:
    global _pacer
    _pacer = pacer


def send_due(session: Session, sender_for: Callable[[Session], Sender | None], now: datetime | None = None) -> int:
    """One worker pass: claim due messages, mark them 'sending' (committed), then call Meta; each outcome
    is recorded with a message.sent event. Broadcast messages are the broadcast engine's to send."""
    now = now or utcnow()
    due = list(
        session.scalars(
            select(Message.id)
            .where(
                Message.status == MessageStatus.QUEUED.value,
                Message.next_attempt_at <= now,
                Message.broadcast_id.is_(None),
            )
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
        if _pacer is not None and sender is not None:
            _pacer(session)
            session.commit()
        claimed = claim(session, [message_id])
        if not claimed:
            continue
        handled += 1
        outcome = send_stored(sender, claimed[0].payload)  # the network call holds no lock and no transaction
        with write_lock(session):
            record_outcomes(session, [(message_id, outcome)])
            session.commit()
    return handled


@dataclass(frozen=True)
class Claimed:
    id: int
    payload: str | None


def claim(session: Session, message_ids: Sequence[int]) -> list[Claimed]:
    """Mark these queued messages 'sending' and commit, before any call to Meta: after a crash, a message
    found 'sending' may have reached Meta and is never sent again on its own. Answers those this call
    claimed (one already claimed or withdrawn is left out), in one transaction for the whole batch."""
    if not message_ids:
        return []
    with write_lock(session):
        rows = session.execute(
            select(Message.id, Message.payload)
            .where(Message.id.in_(list(message_ids)), Message.status == MessageStatus.QUEUED.value)
            .with_for_update()
        ).all()
        if rows:
            session.execute(
                update(Message)
                .where(Message.id.in_([row.id for row in rows]))
                .values(status=MessageStatus.SENDING.value, attempts=Message.attempts + 1)
                .execution_options(synchronize_session=False)
            )
        session.commit()
    order = {message_id: place for place, message_id in enumerate(message_ids)}
    return sorted((Claimed(row.id, row.payload) for row in rows), key=lambda item: order[item.id])


# What recording an answer reads and writes: loading only these keeps a batch of hundreds cheap.
RECORDED = (
    Message.id,
    Message.conversation_id,
    Message.contact_id,
    Message.status,
    Message.wamid,
    Message.attempts,
    Message.next_attempt_at,
    Message.error_code,
    Message.error_title,
    Message.error_explanation,
    Message.broadcast_id,
)

# For one refused send: when to try again (a moment), False to give up now, None for the usual rule
# (Meta's temporary errors are retried with backoff up to MAX_ATTEMPTS).
RetryPolicy = Callable[[Message, GraphError], "datetime | bool | None"]


def record_outcomes(
    session: Session,
    outcomes: Sequence[tuple[int, str | Exception]],
    retry: RetryPolicy | None = None,
    now: datetime | None = None,
) -> list[Message]:
    """Record what Meta answered for claimed messages, each with its message.sent event, reading and writing
    the batch in a few statements. The caller holds the write lock and commits."""
    if not outcomes:
        return []
    now = now or utcnow()
    ids = [message_id for message_id, _ in outcomes]
    messages = {
        message.id: message
        for message in session.scalars(
            select(Message)
            .options(load_only(*RECORDED))
            .where(Message.id.in_(ids))
            .execution_options(populate_existing=True)
        )
    }
    assignees = dict(
        session.execute(
            select(Conversation.id, Conversation.assignee_id).where(
                Conversation.id.in_({message.conversation_id for message in messages.values()})
            )
        ).all()
    )
    done: list[Message] = []
    accepted: list[tuple[Message, str]] = []
    for message_id, outcome in outcomes:
        message = messages.get(message_id)
        if message is None:
            continue
        if isinstance(outcome, str):
            accepted.append((message, outcome))
        else:
            decided = retry(message, outcome) if retry is not None and isinstance(outcome, GraphError) else None
            _record(session, message, outcome, decided, now)
        done.append(message)
    session.flush()
    _accept(session, accepted)
    _apply_early_statuses(session, [message.wamid for message in done if message.wamid])
    record(
        session,
        *(
            MessageSent(
                message.conversation_id,
                assignees.get(message.conversation_id),
                message.id,
                message.status,
                message.error_code,
            )
            for message in done
        ),
    )
    return done


def _accept(session: Session, accepted: Sequence[tuple[Message, str]]) -> None:
    """Meta's message ids for the sends it took, as one statement (a flush would send MySQL an UPDATE per
    message: a broadcast records hundreds at once); the loaded messages are told their new values."""
    if not accepted:
        return
    sent = {"status": MessageStatus.SENT.value, "next_attempt_at": None, "error_code": None, "error_explanation": None}
    rows = [{"id": message.id, "wamid": wamid} for message, wamid in accepted]
    update_rows(session, Message.__table__, "id", rows, **sent)
    for message, wamid in accepted:
        set_committed_value(message, "wamid", wamid)
        for name, value in sent.items():
            set_committed_value(message, name, value)


def _record(
    session: Session,
    message: Message,
    outcome: Exception,
    decided: datetime | bool | None = None,
    now: datetime | None = None,
) -> None:
    if isinstance(outcome, GraphError):
        again = (outcome.retryable and message.attempts < MAX_ATTEMPTS) if decided is None else decided is not False
        if again:
            message.status = MessageStatus.QUEUED.value
            message.next_attempt_at = (
                decided if isinstance(decided, datetime) else (now or utcnow()) + backoff(message.attempts)
            )
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
    _fail(message, None, str(outcome))


def _fail(message: Message, code: int | None, explanation: str, title: str | None = None) -> None:
    message.status = MessageStatus.FAILED.value
    message.next_attempt_at = None
    message.error_code = code
    message.error_title = title
    message.error_explanation = explanation
    log.info("message %s failed (code %s)", message.id, code)


WITHDRAWN = "Not sent: the broadcast was cancelled before this message left SigDesk."


def withdraw(session: Session, message_ids: Sequence[int], reason: str = WITHDRAWN) -> list[int]:
    """Take back queued messages that were never claimed (a cancelled broadcast's): they are marked failed
    with the reason, so the thread says they never went. A message already claimed is in flight and left to
    finish. Answers the ids withdrawn; the caller owns the transaction (and, on SQLite, the write lock)."""
    if not message_ids:
        return []
    rows = session.execute(
        select(Message.id, Message.conversation_id)
        .where(Message.id.in_(list(message_ids)), Message.status == MessageStatus.QUEUED.value)
        .with_for_update()
    ).all()
    if not rows:
        return []
    session.execute(
        update(Message)
        .where(Message.id.in_([row.id for row in rows]), Message.status == MessageStatus.QUEUED.value)
        .values(
            status=MessageStatus.FAILED.value,
            next_attempt_at=None,
            error_code=None,
            error_title=None,
            error_explanation=reason,
        )
        .execution_options(synchronize_session="fetch")
    )
    assignees = dict(
        session.execute(
            select(Conversation.id, Conversation.assignee_id).where(
                Conversation.id.in_({row.conversation_id for row in rows})
            )
        ).all()
    )
    record(
        session,
        *(
            MessageSent(row.conversation_id, assignees.get(row.conversation_id), row.id, MessageStatus.FAILED.value)
            for row in rows
        ),
    )
    return [row.id for row in rows]


def _apply_early_statuses(session: Session, wamids: Sequence[str]) -> None:
    """Statuses can arrive before Meta's send response is stored: apply those already kept, looking them up
    for the whole batch in one query."""
    if not wamids:
        return
    early = set(
        session.scalars(select(MessageStatusEvent.wamid).where(MessageStatusEvent.wamid.in_(list(wamids))).distinct())
    )
    for wamid in early:
        replay_statuses(session, wamid)


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
