"""State changes of a contact, one function each, taking (session, actor, ...); the caller owns the transaction.

Marketing consent: Meta tells SigDesk a customer stopped or resumed marketing messages in two ways, the
user_preferences webhook and error 131050 on a marketing send. Both go through set_marketing_opt_out,
which keeps them as consent events (sigdesk.consent), where the newest word wins.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.audit.services import record_by
from sigdesk.consent.commands import OPTED_IN, OPTED_OUT, record_consent
from sigdesk.contacts.fields import COLUMN_OF, clean, default_country
from sigdesk.contacts.services import get_contact
from sigdesk.custom_fields.services import set_values
from sigdesk.db import utcnow
from sigdesk.errors import Conflict, Refused, UserError
from sigdesk.events.catalogue import ContactChanged, ContactCreated, ContactDeleted
from sigdesk.events.outbox import record as record_event
from sigdesk.lifecycle.commands import create_tag, set_stage_by_name, set_tags_by_name
from sigdesk.lifecycle.services import find_tag, tag_names_for
from sigdesk.models import (
    AccountEvent,
    Contact,
    Conversation,
    DeliveryState,
    Message,
    MessageStatusEvent,
    Note,
    Reaction,
    UploadedMedia,
    WebhookDelivery,
)
from sigdesk.roles import can

log = logging.getLogger(__name__)

# Meta's error for a marketing message to a customer who stopped them: as good as their own word.
MARKETING_STOPPED = 131050

# What anonymising clears on each of the contact's messages.
MESSAGE_CONTENT = ("text", "caption", "details", "raw", "payload", "filename", "media_id", "sha256", "storage_key")
# The contact record's own fields that anonymising clears (the message times stay, for reports).
ERASED_FIELDS = ("email", "company", "city", "country", "language", "notes", "owner_id")
# What a team note about an anonymised contact says instead of its text.
REDACTED_NOTE = "Note removed: the contact was anonymised."
# Other features' copies of a contact's personal data, erased inside anonymise's transaction (so a failed
# erasure erases nothing, and SQLite's secure_delete covers them): fn(session, contact_id). The merge
# feature registers one for the snapshots of the contacts merged into this one.
ERASERS: dict[str, Callable[[Session, int], None]] = {}


def register_eraser(name: str, erase: Callable[[Session, int], None]) -> None:
    """Let a feature erase its own copies of a contact's personal data when the contact is anonymised."""
    ERASERS[name] = erase


# What Meta's word was, as set_marketing_opt_out's callers name it, and the consent source it is.
REASON_SOURCES = {f"error {MARKETING_STOPPED}": "meta_error_131050", "user_preferences": "meta_preferences"}


def set_marketing_opt_out(
    session: Session, actor: Actor, contact_id: int, opt_out: bool, at: datetime | None = None, reason: str = ""
) -> bool:
    """Record that the customer stopped (True) or resumed (False) marketing messages, as said at `at`.

    Meta's words (the user_preferences webhook, error 131050 in a status) come in here and are kept as
    consent events by sigdesk.consent.commands.record_consent, whose rule is that the newest word wins.
    Returns whether it changed anything: a word older than the one on record is neither kept, audited
    nor announced.
    """
    source = REASON_SOURCES.get(reason, "agent")
    status = OPTED_OUT if opt_out else OPTED_IN
    return record_consent(session, actor, contact_id, status, source, reason or None, at=at) is not None


def anonymise(session: Session, actor: Actor, contact_id: int, data_dir: Path) -> list[Path]:
    """Erase the contact's identity and content, keeping the rows so counts and reports stay whole.

    Their words also go from where they were copied: the team's notes in their conversation lose their
    text (the activity lines, which say who assigned or resolved it, stay), so does any note elsewhere
    that gives their number; the webhook deliveries that name them are deleted once processed, and
    those not yet processed lose their entries (_neutralise_pending), so processing them later cannot
    bring the person back. The account events that name them go (their marketing preferences, say), and
    so do the records of files uploaded through the API for their messages, with their names. Notes
    elsewhere that quote them without their number cannot be told apart and stay. The full-text index
    drops their rows through its triggers; search then merges the index after the commit (the
    `contact.changed` event), so no old index page keeps their words. On SQLite the pages this
    transaction frees are zeroed (secure_delete), so no file or backup keeps the old bytes either.

    Returns the media files to delete once the caller has committed (remove_files), so a failed commit
    never leaves rows pointing at deleted files; a file is kept while another contact's message points
    at the same content. The audit log records that it happened, never who it was.
    """
    contact = get_contact(session, contact_id)
    sqlite = session.get_bind().dialect.name == "sqlite"
    if sqlite:
        secure_delete = session.execute(text("PRAGMA secure_delete")).scalar_one()
        session.execute(text("PRAGMA secure_delete = ON"))
    identities = [value for value in (contact.wa_id, contact.user_id) if value]
    messages = session.scalars(select(Message).where(Message.contact_id == contact_id)).all()
    keys = {m.storage_key for m in messages if m.storage_key}
    if keys:  # our copies of files sent to them through the API, and the names they were uploaded under
        session.execute(
            delete(UploadedMedia)
            .where(UploadedMedia.storage_key.in_(sorted(keys)))
            .execution_options(synchronize_session=False)
        )
    wamids = [m.wamid for m in messages if m.wamid]
    for message in messages:
        for field in MESSAGE_CONTENT:
            setattr(message, field, None)
        if message.media_state:
            message.media_state = "failed"
    if wamids:
        session.execute(
            update(MessageStatusEvent)
            .where(MessageStatusEvent.wamid.in_(wamids))
            .values(recipient_id=None, errors=None, conversation=None, pricing=None, biz_opaque_callback_data=None)
        )
    session.execute(update(Reaction).where(Reaction.contact_id == contact_id).values(emoji=None))
    conversation_ids = select(Conversation.id).where(Conversation.contact_id == contact_id).scalar_subquery()
    mentions = [Note.body.contains(value, autoescape=True) for value in identities]
    notes = session.execute(
        update(Note)
        .where(Note.kind == "note", or_(Note.conversation_id.in_(conversation_ids), *mentions))
        .values(body=REDACTED_NOTE)
        .execution_options(synchronize_session=False)
    ).rowcount
    if identities:
        naming = or_(*[func.instr(WebhookDelivery.raw, value.encode()) > 0 for value in identities])
        session.execute(
            delete(WebhookDelivery)
            .where(WebhookDelivery.state != DeliveryState.RECEIVED.value, naming)
            .execution_options(synchronize_session=False)
        )
        _neutralise_pending(session, naming, set(identities))
        session.execute(
            delete(AccountEvent)
            .where(or_(*[AccountEvent.payload.contains(value, autoescape=True) for value in identities]))
            .execution_options(synchronize_session=False)
        )
    contact.wa_id = None
    contact.user_id = None
    contact.profile_name = None
    contact.display_name = f"Anonymised contact {contact.id}"
    for column in ERASED_FIELDS:  # what the business wrote about them goes too
        setattr(contact, column, None)
    # Erased people get no marketing: part of the erasure, so no consent entry of its own.
    contact.opted_out_marketing = True
    contact.opted_out_changed_at = utcnow()
    contact.marketing_consent = OPTED_OUT
    for erase in ERASERS.values():
        erase(session, contact.id)
    session.flush()
    if sqlite:
        session.execute(text(f"PRAGMA secure_delete = {int(secure_delete)}"))
    doomed = []
    for key in sorted(keys):
        still_used = session.execute(
            select(func.count()).select_from(Message).where(Message.storage_key == key)
        ).scalar_one()
        if not still_used:
            doomed.append(Path(data_dir) / key)
    record_by(
        session,
        actor,
        "contact.anonymised",
        f"contact {contact.id}",
        {"messages": len(messages), "media_files": len(doomed), "notes": notes},
    )
    record_event(session, ContactChanged(contact.id, ("anonymised",)))
    log.info("contact %s anonymised", contact.id)
    return doomed


# Where a webhook names a customer: the sender or recipient of a message, the subject of a status,
# a contacts entry, a marketing preference.
IDENTITY_KEYS = ("from", "from_user_id", "to", "to_user_id", "wa_id", "user_id", "recipient_id", "recipient_user_id")


def _neutralise_pending(session: Session, naming, identities: set[str]) -> None:
    """Take the erased person out of the deliveries not processed yet, keeping everyone else's entries.

    In each change's value, every list entry (message, status, contacts entry, preference) that names
    them by an id is dropped; when that leaves no contacts entry, entries naming nobody go too (Meta
    omits `from` when the lone contacts entry says who wrote). A body that is not JSON could never be
    processed, so it is deleted. The stored signature no longer covers the bytes and is cleared."""
    rows = session.execute(
        select(WebhookDelivery.id, WebhookDelivery.raw).where(
            WebhookDelivery.state == DeliveryState.RECEIVED.value, naming
        )
    ).all()
    for delivery_id, raw in rows:
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            session.execute(delete(WebhookDelivery).where(WebhookDelivery.id == delivery_id))
            continue
        for entry in body.get("entry") or []:
            for change in (entry.get("changes") or []) if isinstance(entry, dict) else []:
                value = change.get("value") if isinstance(change, dict) else None
                if isinstance(value, dict):
                    _drop_person(value, identities)
        cleaned = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(raw=cleaned, size=len(cleaned), signature=None)
        )


def _names(item: object, identities: set[str]) -> bool:
    return isinstance(item, dict) and any(item.get(key) in identities for key in IDENTITY_KEYS)


def _names_nobody(item: object) -> bool:
    return isinstance(item, dict) and not any(item.get(key) for key in IDENTITY_KEYS)


def _drop_person(value: dict, identities: set[str]) -> None:
    profiles = value.get("contacts")
    lone_was_theirs = isinstance(profiles, list) and any(_names(item, identities) for item in profiles)
    _prune(value, identities)
    if lone_was_theirs and not value.get("contacts"):
        for key, items in value.items():
            if isinstance(items, list) and key != "contacts":
                items[:] = [item for item in items if not _names_nobody(item)]


def _prune(node: object, identities: set[str]) -> None:
    """Drop, from every list at any depth (history threads hold messages too), the entries naming them."""
    if isinstance(node, dict):
        for child in node.values():
            _prune(child, identities)
    elif isinstance(node, list):
        node[:] = [item for item in node if not _names(item, identities)]
        for item in node:
            _prune(item, identities)


def remove_files(paths: list[Path]) -> int:
    """Delete what anonymise returned, after the commit; a file already gone counts as not removed."""
    removed = 0
    for path in paths:
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


# --- the contact record -----------------------------------------------------------------------------


def create_contact(
    session: Session,
    actor: Actor,
    phone: str,
    *,
    fields: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    stage: str | None = None,
    from_text: bool = False,
    **standard: Any,
) -> Contact:
    """Add a customer by hand (page, API, import): their phone in any common format, any other standard
    field by its API name (fields.EDITABLE), custom `fields` by key (required ones must be there), `tags`
    and `stage` by name. All in the caller's transaction: a refusal of any part stores nothing. A number
    already on record is a 409 that names the contact. `from_text` reads custom values as spreadsheet
    cells (imports)."""
    values = clean(session, {"phone": phone, **standard}, default_country(session))
    _refuse_taken(session, values["wa_id"])
    now = utcnow()
    contact = Contact(**values, created_at=now, updated_at=now)
    try:
        with session.begin_nested():
            session.add(contact)
            session.flush()
    except IntegrityError:  # written a moment ago by someone else (a webhook, another request)
        _refuse_taken(session, values["wa_id"])
        raise
    custom = set_values(session, contact.id, fields or {}, from_text=from_text, creating=True)
    classified = _classify(session, actor, contact.id, tags, stage)
    session.refresh(contact)  # as stored: MariaDB keeps whole seconds, the database fills its defaults
    names = sorted(standard) + [f"fields.{key}" for key in sorted(custom)] + classified
    record_by(session, actor, "contact.created", f"contact {contact.id}", {"fields": names})
    record_event(session, ContactCreated(contact.id))
    return contact


# The parts of a contact's changes that are not its own columns: custom fields, tags and stage.
EXTRA_PARTS = ("fields", "tags", "stage")


def update_contact(
    session: Session, actor: Actor, contact_id: int, changes: Mapping[str, Any], *, from_text: bool = False
) -> Contact:
    """Change the fields given (by API name) and leave the rest; null or "" clears one. `fields` changes
    only the custom fields it names; `tags` gives the contact exactly those tags; `stage` (a name, null:
    none) moves it. Only what really changes is written, audited and announced, so saving an unchanged
    form leaves no trail."""
    contact = get_contact(session, contact_id)
    standard = {key: value for key, value in changes.items() if key not in EXTRA_PARTS}
    if "phone" in standard and standard["phone"] in (None, ""):
        raise UserError("A contact's phone number cannot be removed", field="phone")
    values = clean(session, standard, default_country(session))
    changed = {column: value for column, value in values.items() if getattr(contact, column) != value}
    if "wa_id" in changed:
        _refuse_taken(session, changed["wa_id"], contact.id)
    custom = set_values(session, contact.id, changes.get("fields") or {}, from_text=from_text)
    classified = _classify(session, actor, contact.id, changes.get("tags"), changes.get("stage", _KEEP))
    if not changed and not custom:
        return contact
    for column, value in changed.items():
        setattr(contact, column, value)
    contact.updated_at = utcnow()
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        _refuse_taken(session, contact.wa_id, contact.id)
        raise
    session.refresh(contact)
    names = tuple(sorted(field for field, column in COLUMN_OF.items() if column in changed)) + tuple(
        f"fields.{key}" for key in sorted(custom)
    )
    record_by(session, actor, "contact.updated", f"contact {contact.id}", {"fields": list(names) + classified})
    record_event(session, ContactChanged(contact.id, names))
    return contact


_KEEP: Any = object()  # update_contact: the stage was not given


def _classify(
    session: Session, actor: Actor, contact_id: int, tags: Sequence[str] | None, stage: Any = _KEEP
) -> list[str]:
    """Set the contact's tags (exactly these; None: leave them) and stage (a name; None: none; _KEEP: leave
    it) through the lifecycle commands, which audit and announce each change. A tag not there yet is
    created when the actor may manage tags, else refused naming `tags`. Returns "tags" and/or "stage"
    for what changed."""
    done: list[str] = []
    if tags is not None:
        if not isinstance(tags, (list, tuple)) or not all(isinstance(name, str) for name in tags):
            raise UserError("'tags' is a list of tag names", field="tags")
        before = tag_names_for(session, [contact_id])[contact_id]
        if actor.user is None or can(actor.user.role, "tags.manage"):
            for name in dict.fromkeys(name.strip() for name in tags if name.strip()):
                if find_tag(session, name) is None:
                    try:
                        create_tag(session, actor, name)
                    except UserError as refused:
                        raise UserError(f"Tag '{name[:64]}': {refused}", field="tags") from None
        try:
            after = set_tags_by_name(session, actor, contact_id, list(tags))
        except UserError as refused:
            if refused.field != "tags" or refused.status != 400:
                raise
            raise Refused(str(refused), field="tags") from None
        if sorted(before) != sorted(after):
            done.append("tags")
    if stage is not _KEEP:
        if stage is not None and not isinstance(stage, str):
            raise UserError("'stage' is a stage's name, or null for none", field="stage")
        try:
            moved = set_stage_by_name(session, actor, contact_id, stage)
        except UserError as refused:  # an unknown stage: well-formed, but not one the admins keep
            if refused.field != "stage" or refused.status != 400:
                raise
            raise Refused(str(refused), field="stage") from None
        if moved:
            done.append("stage")
    return done


def delete_contact(session: Session, actor: Actor, contact_id: int) -> None:
    """Delete a contact that never had a conversation (a typo, a duplicate entered by hand).

    A contact with conversations is refused: deleting would take their messages out of every report and
    the team's history. To erase a person, anonymise them (Admin -> Exports, or `anonymise`), which
    keeps the rows and drops who they were.
    """
    contact = get_contact(session, contact_id)
    has_conversation = session.scalar(select(Conversation.id).where(Conversation.contact_id == contact.id).limit(1))
    if has_conversation is not None:
        raise Refused(
            "This contact has conversations, so deleting would lose their history; anonymise them instead "
            "to erase who they are",
            field="contact_id",
        )
    session.delete(contact)
    session.flush()
    record_by(session, actor, "contact.deleted", f"contact {contact_id}")
    record_event(session, ContactDeleted(contact_id))


def _refuse_taken(session: Session, wa_id: str | None, contact_id: int | None = None) -> None:
    taken = session.scalar(select(Contact.id).where(Contact.wa_id == wa_id, Contact.id != (contact_id or 0)))
    if taken is not None:
        raise Conflict(f"Contact {taken} already has this phone number", field="phone")
