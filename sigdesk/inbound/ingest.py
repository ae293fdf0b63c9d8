"""Applying a parsed delivery to the database: contacts, conversations, messages, statuses and the rest.

See sigdesk.inbound.services for the guarantees (idempotence, status ordering, races). The hot path
uses Prepared statements on the session's connection: at hundreds of deliveries a second, building
ORM objects and statements per row costs more than the database work itself.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam, case, or_, select, update
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.contacts.commands import MARKETING_STOPPED, set_marketing_opt_out
from sigdesk.db import UTCDateTime, read_json, utcnow
from sigdesk.events.catalogue import DomainEvent, MessageReceived, MessageUpdated
from sigdesk.prepared import Prepared, insert_ignore
from sigdesk.models import (
    AccountEvent,
    Contact,
    Conversation,
    ConversationStatus,
    Direction,
    MediaState,
    Message,
    MessageStatus,
    MessageStatusEvent,
    Reaction,
    Template,
)
from sigdesk.models.message import STATUS_RANK
from sigdesk.whatsapp.errors import explain
from sigdesk.whatsapp import types as wa
from sigdesk.whatsapp.webhook import dumps

log = logging.getLogger(__name__)

WEBHOOK = Actor.system("webhook")

# Message types that are notices about other messages, not something for an agent to read.
NOT_UNREAD = frozenset({"reaction", "edit", "revoke", "system"})

_contacts = Contact.__table__
_conversations = Conversation.__table__
_messages = Message.__table__
_status_events = MessageStatusEvent.__table__
_reactions = Reaction.__table__
_templates = Template.__table__
_events = AccountEvent.__table__


def _when(name: str):
    return bindparam(name, type_=UTCDateTime())


def _later(column, name: str):
    """column := max(column, :name), where a NULL :name changes nothing."""
    value = _when(name)
    return case((value.is_(None), column), (or_(column.is_(None), column < value), value), else_=column)


def _earlier(column, name: str):
    """column := min(column, :name), where a NULL :name changes nothing."""
    value = _when(name)
    return case((value.is_(None), column), (or_(column.is_(None), column > value), value), else_=column)


# FOR UPDATE (MySQL; SQLite has one writer anyway): inserting a message takes shared locks on its
# contact and conversation rows through the foreign keys, and two deliveries that both hold those
# and then update the rows deadlock. Taking the write locks first makes the second one wait instead.
_CONTACT_BY_IDS = Prepared(
    select(
        _contacts.c.id,
        _contacts.c.wa_id,
        _contacts.c.user_id,
        _contacts.c.profile_name,
        _conversations.c.id,
        _conversations.c.assignee_id,
    )
    .select_from(_contacts.outerjoin(_conversations, _conversations.c.contact_id == _contacts.c.id))
    .where(or_(_contacts.c.wa_id == bindparam("b_wa_id"), _contacts.c.user_id == bindparam("b_user_id")))
    .with_for_update()
)
# Where a message sits, for telling open inboxes about a change to it.
_PLACE = Prepared(
    select(_messages.c.id, _messages.c.conversation_id, _conversations.c.assignee_id)
    .select_from(_messages.join(_conversations, _conversations.c.id == _messages.c.conversation_id))
    .where(_messages.c.wamid == bindparam("b_wamid"))
)
_REOPEN = (ConversationStatus.RESOLVED.value, ConversationStatus.SNOOZED.value)
_TOUCH_CONVERSATION = Prepared(
    update(_conversations)
    .where(_conversations.c.id == bindparam("b_id"))
    .values(
        last_message_at=_later(_conversations.c.last_message_at, "b_message_at"),
        last_inbound_at=_later(_conversations.c.last_inbound_at, "b_inbound_at"),
        unread_count=_conversations.c.unread_count + bindparam("b_unread"),
        status=case(
            (
                (bindparam("b_unread") > 0) & or_(*(_conversations.c.status == name for name in _REOPEN)),
                ConversationStatus.OPEN.value,
            ),
            else_=_conversations.c.status,
        ),
    )
)
# Two statements, not one with a CASE: naming profile_name in SET rewrites the contact's full-text
# entry (an UPDATE OF trigger), and the name rarely changes while last_inbound_at always does.
# The contact record's message times ride on the same one UPDATE per contact and delivery; the outbound
# ones (messages sent from the phone app) only in the rare delivery that has any.
_CONTACT_SEEN_STMT = (
    update(_contacts)
    .where(_contacts.c.id == bindparam("b_id"))
    .values(
        last_inbound_at=_later(_contacts.c.last_inbound_at, "b_inbound_at"),
        first_inbound_at=_earlier(_contacts.c.first_inbound_at, "b_first_inbound_at"),
    )
)
_CONTACT_SENT_STMT = _CONTACT_SEEN_STMT.values(
    last_outbound_at=_later(_contacts.c.last_outbound_at, "b_outbound_at"),
    first_outbound_at=_earlier(_contacts.c.first_outbound_at, "b_first_outbound_at"),
)
_CONTACT_SEEN = Prepared(_CONTACT_SEEN_STMT)
_CONTACT_SENT = Prepared(_CONTACT_SENT_STMT)
_CONTACT_RENAMED = Prepared(_CONTACT_SENT_STMT.values(profile_name=bindparam("b_name")))


def _rank_of(column):
    return case(STATUS_RANK, value=column, else_=-1)


_APPLY_STATUS_STMT = (
    update(_messages)
    .where(
        _messages.c.wamid == bindparam("b_wamid"),
        _messages.c.direction == Direction.OUT.value,
        _rank_of(_messages.c.status) < bindparam("b_rank"),
    )
    .values(status=bindparam("b_status"))
)
_APPLY_STATUS = Prepared(_APPLY_STATUS_STMT)
_APPLY_FAILED_STATUS = Prepared(
    _APPLY_STATUS_STMT.values(
        error_code=bindparam("b_code"), error_title=bindparam("b_title"), error_explanation=bindparam("b_explanation")
    )
)


# What open inboxes must show and background consumers hear of (see sigdesk.events.catalogue).
Change = DomainEvent


@dataclass
class IngestResult:
    messages: int = 0
    duplicate_messages: int = 0
    statuses: int = 0
    duplicate_statuses: int = 0
    reactions: int = 0
    templates: int = 0
    preferences: int = 0
    others: int = 0
    changes: list[Change] = field(default_factory=list)


@dataclass
class _ContactRow:
    id: int
    wa_id: str | None
    user_id: str | None
    profile_name: str | None
    conversation_id: int | None
    assignee_id: int | None = None


@dataclass
class _Touch:
    """What one delivery changes on a conversation, summed so each row is updated once."""

    contact_id: int
    last_message_at: datetime | None = None
    last_inbound_at: datetime | None = None
    first_inbound_at: datetime | None = None
    last_outbound_at: datetime | None = None
    first_outbound_at: datetime | None = None
    unread: int = 0

    def times(self) -> dict[str, datetime | None]:
        """The contact's message times this delivery brings, as _CONTACT_SENT binds them."""
        return {
            "b_inbound_at": self.last_inbound_at,
            "b_first_inbound_at": self.first_inbound_at,
            "b_outbound_at": self.last_outbound_at,
            "b_first_outbound_at": self.first_outbound_at,
        }


@dataclass
class _State:
    session: Session
    conn: Connection
    now: datetime
    delivery_id: int | None = None
    by_wa: dict[str, _ContactRow] = field(default_factory=dict)
    by_user: dict[str, _ContactRow] = field(default_factory=dict)
    touched: dict[int, _Touch] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    result: IngestResult = field(default_factory=IngestResult)


def ingest(session: Session, delivery: wa.Delivery, delivery_id: int | None = None) -> IngestResult:
    """Apply a parsed delivery; the one function both the webhook and the relay feed."""
    return ingest_on(session, session.connection(), delivery, delivery_id)


@dataclass
class KnownContacts:
    """Senders already looked up (and locked) in this transaction; None marks one looked up and not
    found. Deliveries applied in one transaction share it: most come from a few busy senders."""

    by_wa: dict[str, _ContactRow | None] = field(default_factory=dict)
    by_user: dict[str, _ContactRow | None] = field(default_factory=dict)


def ingest_on(
    session: Session,
    conn: Connection,
    delivery: wa.Delivery,
    delivery_id: int | None,
    known: KnownContacts | None = None,
) -> IngestResult:
    """`ingest` on a connection the caller already holds (saves a lookup per delivery); `known`
    only ever within the one transaction it was filled in."""
    known = known if known is not None else KnownContacts()
    state = _State(
        session=session, conn=conn, now=utcnow(), delivery_id=delivery_id, by_wa=known.by_wa, by_user=known.by_user
    )
    _prefetch_contacts(state, delivery)
    for message in delivery.messages:
        _ingest_message(state, message)
    for status in delivery.statuses:
        _ingest_status(state, status)
    for preference in delivery.preferences:
        _ingest_preference(state, preference)
    for template in delivery.templates:
        _ingest_template(state, template)
    for other in delivery.others:
        if _record_event(state, other.field, other.event, other.waba_id, other.raw, other.occurred_at):
            state.result.others += 1
    _apply_touches(state)
    return state.result


def _cut(value: str | None, length: int) -> str | None:
    return value[:length] if value is not None and len(value) > length else value


def _prefetch_contacts(state: _State, delivery: wa.Delivery) -> None:
    """Load each sender once per delivery, however many messages they sent in it."""
    keys = {(_cut(item.wa_id, 64), _cut(item.user_id, 64)) for item in (*delivery.messages, *delivery.preferences)}
    for wa_id, user_id in sorted(keys, key=lambda key: (key[0] or "", key[1] or "")):  # one lock order for all
        if (wa_id and wa_id not in state.by_wa) or (user_id and user_id not in state.by_user):
            _load_contacts(state, wa_id, user_id)


def _load_contacts(state: _State, wa_id: str | None, user_id: str | None) -> None:
    for row in _CONTACT_BY_IDS(state.conn, {"b_wa_id": wa_id, "b_user_id": user_id}):
        _remember(state, _ContactRow(*row))
    if wa_id:
        state.by_wa.setdefault(wa_id, None)
    if user_id:
        state.by_user.setdefault(user_id, None)


def _remember(state: _State, row: _ContactRow) -> None:
    if row.wa_id:
        state.by_wa[row.wa_id] = row
    if row.user_id:
        state.by_user[row.user_id] = row


def _contact(
    state: _State, wa_id: str | None, user_id: str | None, name: str | None, create: bool = True
) -> _ContactRow | None:
    """Find the customer by wa_id or user_id, filling in the other id when it is new to us.

    When the two ids point at two different contacts, the user_id wins: it is stable across phone
    number changes. The rows are not merged automatically; that needs a person.
    """
    wa_id, user_id = _cut(wa_id, 64), _cut(user_id, 64)
    if not wa_id and not user_id:
        return None
    if (wa_id and wa_id not in state.by_wa) or (user_id and user_id not in state.by_user):
        _load_contacts(state, wa_id, user_id)
    by_wa = state.by_wa.get(wa_id) if wa_id else None
    by_user = state.by_user.get(user_id) if user_id else None
    row = by_user or by_wa
    if row is None:
        return _create_contact(state, wa_id, user_id, name) if create else None
    if by_wa is not None and by_user is not None and by_wa.id != by_user.id:
        log.debug("contact ids disagree: wa_id and user_id belong to contacts %s and %s", by_wa.id, by_user.id)
    else:
        _fill_ids(state, row, wa_id, user_id)
    return row


def _learn_name(state: _State, row: _ContactRow, name: str | None) -> None:
    """Called only for new events, so a redelivered old message cannot bring back an old name."""
    name = _cut(name, 255)
    if name and row.profile_name != name:
        row.profile_name = name
        state.names[row.id] = name


def _create_contact(state: _State, wa_id: str | None, user_id: str | None, name: str | None) -> _ContactRow:
    values = {
        "wa_id": wa_id,
        "user_id": user_id,
        "profile_name": _cut(name, 255),
        "display_name": None,
        "opted_out_marketing": False,
        "opted_out_changed_at": None,
        "marketing_consent": "unknown",
        "created_at": state.now,
        "last_inbound_at": None,
    }
    new_id = insert_ignore(state.conn, _contacts, values)
    if new_id is not None:
        row = _ContactRow(new_id, wa_id, user_id, values["profile_name"], None)
        _remember(state, row)
        return row
    # Someone else created them a moment ago (or the other id is taken): read what is there.
    _load_contacts(state, wa_id, user_id)
    row = (state.by_user.get(user_id) if user_id else None) or (state.by_wa.get(wa_id) if wa_id else None)
    if row is None:
        raise RuntimeError("contact insert was ignored but no matching contact exists")
    _fill_ids(state, row, wa_id, user_id)
    return row


def _fill_ids(state: _State, row: _ContactRow, wa_id: str | None, user_id: str | None) -> None:
    values = {}
    if wa_id and not row.wa_id and state.by_wa.get(wa_id) is None:
        values["wa_id"] = wa_id
    if user_id and not row.user_id and state.by_user.get(user_id) is None:
        values["user_id"] = user_id
    if not values:
        return
    try:
        with state.session.begin_nested():
            state.conn.execute(update(_contacts).where(_contacts.c.id == row.id).values(**values))
    except IntegrityError:
        log.info("contact %s: an id learned from a webhook already belongs to another contact", row.id)
        return
    row.wa_id = values.get("wa_id", row.wa_id)
    row.user_id = values.get("user_id", row.user_id)
    _remember(state, row)


def _conversation_id(state: _State, row: _ContactRow) -> int:
    if row.conversation_id is not None:
        return row.conversation_id
    values = {
        "contact_id": row.id,
        "status": ConversationStatus.OPEN.value,
        "assignee_id": None,
        "last_message_at": None,
        "last_inbound_at": None,
        "unread_count": 0,
        "created_at": state.now,
    }
    new_id = insert_ignore(state.conn, _conversations, values)
    if new_id is None:
        new_id = state.conn.scalar(select(_conversations.c.id).where(_conversations.c.contact_id == row.id))
    row.conversation_id = new_id
    return new_id


def _touch(state: _State, row: _ContactRow, at: datetime, inbound: bool, unread: bool, message: bool = True) -> None:
    conversation_id = _conversation_id(state, row)
    touch = state.touched.get(conversation_id)
    if touch is None:
        touch = state.touched[conversation_id] = _Touch(contact_id=row.id)
    if message and (touch.last_message_at is None or at > touch.last_message_at):
        touch.last_message_at = at
    if inbound and (touch.last_inbound_at is None or at > touch.last_inbound_at):
        touch.last_inbound_at = at
    if inbound and (touch.first_inbound_at is None or at < touch.first_inbound_at):
        touch.first_inbound_at = at
    if message and not inbound:
        if touch.last_outbound_at is None or at > touch.last_outbound_at:
            touch.last_outbound_at = at
        if touch.first_outbound_at is None or at < touch.first_outbound_at:
            touch.first_outbound_at = at
    if unread:
        touch.unread += 1


def _apply_touches(state: _State) -> None:
    """One UPDATE per conversation and contact per delivery; max() keeps late arrivals harmless."""
    for conversation_id, touch in state.touched.items():
        _TOUCH_CONVERSATION(
            state.conn,
            {
                "b_id": conversation_id,
                "b_message_at": touch.last_message_at,
                "b_inbound_at": touch.last_inbound_at,
                "b_unread": touch.unread,
            },
        )
        name = state.names.pop(touch.contact_id, None)
        if name is not None:
            _CONTACT_RENAMED(state.conn, {"b_id": touch.contact_id, **touch.times(), "b_name": name})
        elif touch.last_outbound_at is not None:
            _CONTACT_SENT(state.conn, {"b_id": touch.contact_id, **touch.times()})
        elif touch.last_inbound_at is not None:
            _CONTACT_SEEN(
                state.conn,
                {
                    "b_id": touch.contact_id,
                    "b_inbound_at": touch.last_inbound_at,
                    "b_first_inbound_at": touch.first_inbound_at,
                },
            )
    for contact_id, name in state.names.items():
        _CONTACT_RENAMED(state.conn, {"b_id": contact_id, **_Touch(contact_id).times(), "b_name": name})


# --- messages ----------------------------------------------------------------------------------


def _ingest_message(state: _State, message: wa.Message) -> None:
    name = message.profile.name if message.profile else None
    row = _contact(state, message.wa_id, message.user_id, name, create=False)
    if row is None:
        if not message.wa_id and not message.user_id:
            _record_event(state, "messages", "message_without_sender", None, message.raw, message.timestamp)
            return
        if _already_stored(state, message):
            state.result.duplicate_messages += 1  # from a contact that has since moved on
            return
        row = _contact(state, message.wa_id, message.user_id, name)
    at = message.timestamp or state.now
    inbound = message.direction == wa.INBOUND
    content = message.content
    if isinstance(content, wa.Reaction):
        if _ingest_reaction(state, row, message, content, at):
            state.result.reactions += 1
            _changed(state, _cut(content.message_id, 255))
            _learn_name(state, row, name)
        if inbound:
            _touch(state, row, at, inbound=True, unread=False, message=False)
        return
    values = _message_values(state, row, message, at)
    message_id = insert_ignore(state.conn, _messages, values)
    if message_id is None:
        state.result.duplicate_messages += 1
        return
    state.result.messages += 1
    state.result.changes.append(
        MessageReceived(values["conversation_id"], row.assignee_id, message_id, row.id, message.type)
    )
    _learn_name(state, row, name)
    if isinstance(content, wa.Edit):
        _apply_edit(state, row, message, content, at)
    elif isinstance(content, wa.Revoke):
        _apply_revoke(state, row, content, at)
    elif isinstance(content, wa.System) and inbound:
        _apply_system(state, row, content)
    visible = message.type not in NOT_UNREAD
    _touch(state, row, at, inbound=inbound, unread=inbound and visible, message=visible)


def _changed(state: _State, wamid: str | None) -> None:
    """Note an update to a message we may only know by Meta's id (a status, reaction or revoke)."""
    if not wamid:
        return
    for message_id, conversation_id, assignee_id in _PLACE(state.conn, {"b_wamid": wamid}):
        state.result.changes.append(MessageUpdated(conversation_id, assignee_id, message_id))


def _already_stored(state: _State, message: wa.Message) -> bool:
    table = _reactions if isinstance(message.content, wa.Reaction) else _messages
    found = state.conn.execute(select(table.c.id).where(table.c.wamid == _cut(message.wamid, 255)).limit(1)).first()
    return found is not None


def _message_values(state: _State, row: _ContactRow, message: wa.Message, at: datetime) -> dict[str, Any]:
    content = message.content
    context = message.context
    error = message.errors[0] if message.errors else None
    media = content if isinstance(content, wa.Media) else None
    return {
        "wamid": _cut(message.wamid, 255),
        "conversation_id": _conversation_id(state, row),
        "contact_id": row.id,
        "direction": Direction.IN.value if message.direction == wa.INBOUND else Direction.OUT.value,
        "type": _cut(message.type, 32),
        "text": message.text,
        "caption": media.caption if media else None,
        "media_id": _cut(media.media_id, 128) if media else None,
        "mime_type": _cut(media.mime_type, 255) if media else None,
        "sha256": _cut(media.sha256, 128) if media else None,
        "filename": _cut(media.filename, 255) if media else None,
        "file_size": None,
        "storage_key": None,
        "media_state": MediaState.PENDING.value if media and media.media_id else None,
        "details": _details(message),
        "reply_to_wamid": _cut(context.message_id, 255) if context else None,
        "forwarded": bool(context and context.forwarded),
        "frequently_forwarded": bool(context and context.frequently_forwarded),
        "status": None if message.direction == wa.INBOUND else "sent",
        "error_code": error.code if error else None,
        "error_title": _cut(error.title or error.message, 255) if error else None,
        "error_explanation": error.details if error else None,
        "timestamp": at,
        "created_at": state.now,
        "edited_at": None,
        "revoked_at": None,
        "raw": message.raw,
        "client_ref": None,
        "payload": None,
        "author_id": None,
        "attempts": 0,
        "next_attempt_at": None,
    }


def _plain(value: Any) -> Any:
    """Dataclasses to JSON-ready dicts, dropping empty fields so details stay small."""
    if hasattr(value, "__dataclass_fields__"):
        out = {}
        for name in value.__dataclass_fields__:
            item = _plain(getattr(value, name))
            if item not in (None, False, (), [], {}):
                out[name.rstrip("_")] = item
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


_MEDIA_COLUMNS = ("kind", "media_id", "mime_type", "sha256", "caption", "filename")


def _details(message: wa.Message) -> str | None:
    details: dict[str, Any] = {}
    content = message.content
    if isinstance(content, wa.SharedContacts):
        details["contacts"] = {"cards": list(content.cards)}
    elif content is not None and not isinstance(content, wa.Text):
        part = _plain(content)
        if isinstance(content, wa.Media):
            for key in _MEDIA_COLUMNS:
                part.pop(key, None)
        if part:
            details[message.type] = part
    if message.context is not None:
        details["context"] = _plain(message.context)
    if message.referral is not None:
        details["referral"] = message.referral
    if message.errors:
        details["errors"] = _plain(message.errors)
    return dumps(details) if details else None


def _reaction_upsert(dialect: str):
    if dialect == "sqlite":
        base = sqlite_insert(_reactions)
        return base.on_conflict_do_update(
            index_elements=["target_wamid", "contact_id"],
            set_={"emoji": base.excluded.emoji, "wamid": base.excluded.wamid, "reacted_at": base.excluded.reacted_at},
            where=base.excluded.reacted_at >= _reactions.c.reacted_at,
        )
    if dialect in ("mysql", "mariadb"):
        base = mysql_insert(_reactions)
        newer = base.inserted.reacted_at >= _reactions.c.reacted_at
        # MySQL applies SET clauses left to right, so reacted_at must change last.
        return base.on_duplicate_key_update(
            [
                ("emoji", case((newer, base.inserted.emoji), else_=_reactions.c.emoji)),
                ("wamid", case((newer, base.inserted.wamid), else_=_reactions.c.wamid)),
                ("reacted_at", case((newer, base.inserted.reacted_at), else_=_reactions.c.reacted_at)),
            ]
        )
    raise RuntimeError(f"unsupported database {dialect}")  # pragma: no cover


_REACTION_COLUMNS = ("target_wamid", "contact_id", "emoji", "wamid", "reacted_at")
_UPSERT_REACTION = Prepared(_reaction_upsert, column_keys=_REACTION_COLUMNS)


def _ingest_reaction(state: _State, row: _ContactRow, message: wa.Message, reaction: wa.Reaction, at: datetime) -> bool:
    """Latest reaction per (message, customer) wins; a removal is kept as emoji None, so an older
    reaction delivered late cannot bring it back."""
    if not reaction.message_id:
        _record_event(state, "messages", "reaction_without_target", None, message.raw, message.timestamp)
        return False
    _UPSERT_REACTION(
        state.conn,
        {
            "target_wamid": _cut(reaction.message_id, 255),
            "contact_id": row.id,
            "emoji": _cut(reaction.emoji, 64),
            "wamid": _cut(message.wamid, 255),
            "reacted_at": at,
        },
    )
    return True


def _own_target(state: _State, row: _ContactRow, wamid: str | None):
    if not wamid:
        return None
    m = _messages.c
    return state.conn.execute(
        select(m.id, m.text, m.caption, m.details, m.edited_at, m.revoked_at).where(
            m.wamid == _cut(wamid, 255), m.contact_id == row.id
        )
    ).first()


def _apply_edit(state: _State, row: _ContactRow, message: wa.Message, edit: wa.Edit, at: datetime) -> None:
    """Show the new version, keep the first version in details; older edits never win.

    The UPDATE only lands if nobody edited the message since we read it (compare-and-set), so two
    edits processed at once cannot lose the original text.
    """
    m = _messages.c
    for _ in range(3):
        target = _own_target(state, row, edit.original_wamid)
        if target is None or target.revoked_at is not None or (target.edited_at is not None and target.edited_at > at):
            return
        details = read_json(target.details, None, "messages.details")
        if details is None:
            details = {}
        elif not isinstance(details, dict):
            details = {"previous": details}
        details.setdefault("original", {"text": target.text, "caption": target.caption})
        details["edited_by"] = message.wamid
        values: dict[str, Any] = {"edited_at": at, "details": dumps(details)}
        if isinstance(edit.content, wa.Media):
            values["caption"] = edit.caption
        elif edit.text is not None:
            values["text"] = edit.text
        unchanged = m.edited_at.is_(None) if target.edited_at is None else m.edited_at == target.edited_at
        stmt = update(_messages).where(m.id == target.id, m.revoked_at.is_(None), unchanged).values(**values)
        if state.conn.execute(stmt).rowcount:
            state.result.changes.append(
                MessageUpdated(_conversation_id(state, row), row.assignee_id, target.id, "edit")
            )
            return


def _apply_revoke(state: _State, row: _ContactRow, revoke: wa.Revoke, at: datetime) -> None:
    """The customer deleted it for everyone: hide the words; `raw` still holds Meta's copy."""
    if not revoke.original_wamid:
        return
    m = _messages.c
    wamid = _cut(revoke.original_wamid, 255)
    revoked = state.conn.execute(
        update(_messages)
        .where(m.wamid == wamid, m.contact_id == row.id, m.revoked_at.is_(None))
        .values(revoked_at=at, text=None, caption=None)
    ).rowcount
    if revoked:
        _changed(state, wamid)


def _apply_system(state: _State, row: _ContactRow, system: wa.System) -> None:
    """Follow a customer to their new number, unless that number already is another contact."""
    new_wa_id = _cut(system.new_wa_id, 64)
    if system.kind != "user_changed_number" or not new_wa_id or new_wa_id == row.wa_id:
        return
    try:
        with state.session.begin_nested():
            state.conn.execute(update(_contacts).where(_contacts.c.id == row.id).values(wa_id=new_wa_id))
    except IntegrityError:
        log.info("contact %s changed number to one another contact already has", row.id)
        return
    if row.wa_id:
        state.by_wa.pop(row.wa_id, None)
    row.wa_id = new_wa_id
    state.by_wa[new_wa_id] = row


# --- statuses ----------------------------------------------------------------------------------


def _ingest_status(state: _State, status: wa.Status) -> None:
    values = {
        "wamid": _cut(status.wamid, 255),
        "status": _cut(status.status, 16),
        "timestamp": status.timestamp,
        "recipient_id": _cut(status.recipient_id, 64),
        "errors": dumps(_plain(status.errors)) if status.errors else None,
        "conversation": dumps(status.conversation) if status.conversation is not None else None,
        "pricing": dumps(status.pricing) if status.pricing is not None else None,
        "biz_opaque_callback_data": status.biz_opaque_callback_data,
        "created_at": state.now,
    }
    if insert_ignore(state.conn, _status_events, values) is None:
        state.result.duplicate_statuses += 1
        return
    state.result.statuses += 1
    if status.biz_opaque_callback_data:
        _adopt_interrupted_send(state.conn, values["wamid"], status.biz_opaque_callback_data)
    if _apply_status(state.conn, values["wamid"], values["status"], status.errors[0] if status.errors else None):
        _changed(state, values["wamid"])
    if status.errors and status.errors[0].code == MARKETING_STOPPED:
        _marketing_stopped(state, values["wamid"], status.timestamp or state.now)


def _marketing_stopped(state: _State, wamid: str, at: datetime) -> None:
    """Meta refused a marketing message because the customer stopped them: SigDesk learns it too."""
    m = _messages.c
    contact_id = state.conn.execute(
        select(m.contact_id).where(m.wamid == wamid, m.direction == Direction.OUT.value)
    ).scalar()
    if contact_id is not None:
        set_marketing_opt_out(state.session, WEBHOOK, contact_id, True, at, f"error {MARKETING_STOPPED}")


def _adopt_interrupted_send(conn: Connection, wamid: str, client_ref: str) -> None:
    """A send cut short by a crash did reach Meta after all: its status carries our client_ref back."""
    conn.execute(
        update(_messages)
        .where(
            _messages.c.client_ref == client_ref[:64],
            _messages.c.wamid.is_(None),
            _messages.c.direction == Direction.OUT.value,
        )
        .values(
            wamid=wamid, status=MessageStatus.SENDING.value, error_code=None, error_title=None, error_explanation=None
        )
    )


def _apply_status(conn: Connection, wamid: str, status: str, error: wa.ErrorInfo | None) -> bool:
    """Raise the message's status if this one ranks higher; one atomic UPDATE, so races cannot lower it."""
    rank = STATUS_RANK.get(status)
    if rank is None:
        return False
    params: dict[str, Any] = {"b_wamid": wamid, "b_rank": rank, "b_status": status}
    if error is None:
        return bool(_APPLY_STATUS(conn, params).rowcount)
    params.update(
        b_code=error.code,
        b_title=_cut(error.title or error.message, 255),
        b_explanation=explain(error.code, error.title or error.message)
        if error.code
        else (error.details or error.message),
    )
    return bool(_APPLY_FAILED_STATUS(conn, params).rowcount)


def replay_statuses(session: Session, wamid: str) -> None:
    """For the send path: statuses Meta reported before we stored the message (out of order)."""
    rows = session.execute(
        select(MessageStatusEvent.status, MessageStatusEvent.errors).where(MessageStatusEvent.wamid == wamid)
    ).all()
    for status, errors_json in sorted(rows, key=lambda item: STATUS_RANK.get(item[0], -1)):
        error = None
        errors = read_json(errors_json, list, "message_status_events.errors")
        first = errors[0] if errors and isinstance(errors[0], dict) else None
        if first is not None:
            error = wa.ErrorInfo(
                code=first.get("code"),
                title=first.get("title"),
                message=first.get("message"),
                details=first.get("details"),
            )
        _apply_status(session.connection(), wamid, status, error)


# --- preferences, templates, other events ------------------------------------------------------


def _ingest_preference(state: _State, preference: wa.UserPreference) -> None:
    """Marketing stop/resume through the contacts command (audited, announced), on the session whose
    connection this ingest writes on; it is rare, so the command's few statements cost nothing here."""
    opt_out = preference.marketing_opt_out
    name = preference.profile.name if preference.profile else None
    row = _contact(state, preference.wa_id, preference.user_id, name)
    if row is None or opt_out is None:
        _record_event(state, "user_preferences", preference.value, None, preference.raw, preference.timestamp)
        return
    at = preference.timestamp or state.now
    if set_marketing_opt_out(state.session, WEBHOOK, row.id, opt_out, at, "user_preferences"):
        _learn_name(state, row, name)
    state.result.preferences += 1


def _ingest_template(state: _State, change: wa.TemplateUpdate) -> None:
    """Template webhooks are recorded as events too; only a new event moves the template's state."""
    if not _record_event(state, change.field, change.event, None, change.raw, change.occurred_at):
        return
    if not change.name or not change.language:
        return
    name, language = _cut(change.name, 255), _cut(change.language, 32)
    changes: dict[str, Any] = {}
    if change.template_id:
        changes["meta_id"] = _cut(change.template_id, 64)
    if change.field == "message_template_status_update" and change.event:
        changes["status"] = _cut(change.event, 32)
        changes["rejected_reason"] = change.reason if change.event.upper() == "REJECTED" else None
    if change.category:
        changes["category"] = _cut(change.category, 32)
    if change.quality:
        changes["quality"] = _cut(change.quality, 32)
    inserted = insert_ignore(
        state.conn,
        _templates,
        {
            "name": name,
            "language": language,
            "created_at": state.now,
            "updated_at": state.now,
            **changes,
        },
    )
    if inserted is None and changes:
        state.conn.execute(
            update(_templates)
            .where(_templates.c.name == name, _templates.c.language == language)
            .values(updated_at=state.now, **changes)
        )
    state.result.templates += 1


def _record_event(
    state: _State,
    field_: str,
    event: str | None,
    waba_id: str | None,
    raw: str,
    occurred_at: datetime | None,
) -> bool:
    """Store once per content; returns False for a redelivery."""
    key = "\x1f".join((field_, waba_id or "", occurred_at.isoformat() if occurred_at else "", raw))
    fingerprint = hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()
    return (
        insert_ignore(
            state.conn,
            _events,
            {
                "fingerprint": fingerprint,
                "field": _cut(field_, 64),
                "event": _cut(event, 64),
                "waba_id": _cut(waba_id, 64),
                "payload": raw,
                "occurred_at": occurred_at,
                "created_at": state.now,
                "delivery_id": state.delivery_id,
            },
        )
        is not None
    )
