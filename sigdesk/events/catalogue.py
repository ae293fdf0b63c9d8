"""The domain events SigDesk records: every name, its payload, and when it happens.

A command records events on its session; they reach the outbox table in the same transaction and are
published (live updates, in-process subscribers) only after that transaction commits, never for one
rolled back (see sigdesk.events.outbox). Background consumers such as automation, outbound webhooks,
broadcasts, rollups and AI read the outbox: every event at least once, in order.

Payloads hold ids and small facts, never message bodies, names or phone numbers: a consumer that
needs more reads it from the database, where retention and anonymisation already apply.

| name                          | when                                                                   |
| ----------------------------- | ---------------------------------------------------------------------- |
| message.received              | a customer's message was stored (webhook or relay)                     |
| message.updated               | a stored message changed: edit, revoke, reaction, or a status webhook  |
| message.queued                | a message was queued to send (inbox, API, system)                      |
| message.sent                  | Meta accepted a queued message, or refused it for good (`status`)      |
| message.retried               | a failed message was queued again                                      |
| conversation.created          | a conversation was opened for a contact                                |
| conversation.assigned         | a conversation changed hands                                           |
| conversation.status_changed   | open, pending, snoozed (with `snoozed_until`) or resolved              |
| conversation.labelled         | a label was put on or taken off (`on`)                                 |
| conversation.read             | someone read the conversation; the read receipt goes out in background |
| note.added                    | a team note was written                                                |
| contact.created               | a contact was added by hand, the API or an import (not by a message)   |
| contact.changed               | a contact's record changed (`fields` names what, never the values)     |
| contact.deleted               | a contact without conversations was deleted                            |
| contacts.merged               | a contact was merged into another and deleted (`merge_id`)             |
| contacts.not_duplicates       | two contacts were said not to be duplicates (`low_id`, `high_id`)      |
| conversation.merged           | a merge moved a conversation's messages into another and deleted it    |
| consent.recorded              | a marketing opt-in or opt-out was recorded (`status`, `source`)        |
| contact.tagged                | a tag was put on a contact or taken off (`on`)                         |
| contact.stage_changed         | a contact entered a lifecycle stage (`stage_id` None: left it)         |
| tag.changed                   | a tag was created, renamed, recoloured or deleted (`change`)           |
| stage.changed                 | a stage was created, renamed, moved or deleted (`change`)              |
| contact_field.defined         | an admin added a custom contact field                                  |
| contact_field.changed         | a custom field's definition changed (`changes` names what)             |
| contact_field.deleted         | a custom field and its values were deleted (`values`: how many)        |
| segment.changed               | a segment was created, changed or deleted (`change`)                   |
| contacts.bulk_changed         | a bulk action ran on many contacts (`action`, `count`, never the ids)  |
| lead_score.rules_changed      | a lead score rule was created, changed, moved or deleted (`change`)    |
| settings.changed              | settings were saved (`keys`, never values)                             |
| user.changed                  | a team member was added, changed, deactivated or signed out everywhere |
| token.changed                 | an API token was created or revoked                                    |
| relay.paired                  | this SigDesk was paired with a relay                                   |
| whatsapp.connected            | a WhatsApp number was chosen and its token stored (`phone_number_id`)  |
| whatsapp.subscribed           | Meta was told to send the account's webhooks to a callback (`host`)    |
| relay.replayed                | the relay was asked to send events again from a date (`since`)         |
| backup.finished               | a backup run ended (`ok`, `file`)                                      |
| export.finished               | an export ran (`what`, `format`, `rows`)                               |
| contacts.import_queued        | a contact file was uploaded for import; the worker takes it (`job_id`) |
| contacts.imported             | an import finished or failed: one event per file, not per contact      |
| contacts.import_undo_queued   | undoing an import was asked for; the worker takes it (`job_id`)        |
| contacts.import_undone        | an import was undone as a whole (`deleted`, `restored`, `kept`)        |
| product.changed               | a product was created or changed (by hand, the API, a cart, a sync)    |
| order.created                 | an order was written (`source`: cart, agent, import or api)            |
| order.changed                 | an order's lines, notes or date changed                                |
| order.status_changed          | an order moved from one status to another (`from_status`, `to_status`) |
| order.deleted                 | an order was deleted                                                   |
| orders.imported               | an order import finished: one event per file, not per order (`count`)  |
| products.catalog_sync_queued  | a sync from the Meta catalog was asked for; the worker runs it         |
| broadcast.changed             | a broadcast was created, edited, scheduled, started, paused, resumed,  |
|                               | cancelled, completed or deleted (`change`, `status`)                   |
| broadcast.progressed          | a batch of a broadcast's recipients moved on (`sent`, `failed`, ...)   |
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import cache
from typing import Any, ClassVar

CATALOGUE: dict[str, type["DomainEvent"]] = {}

# What open inboxes are told (sigdesk.events.bus kinds); None: not shown live.
MESSAGE_CREATED = "message.created"
MESSAGE_UPDATED = "message.updated"
CONVERSATION_UPDATED = "conversation.updated"
NOTE_CREATED = "note.created"
CONTACT_UPDATED = "contact.updated"  # a contact's record, tags, stage or consent changed (`contact_id`)


def _named(name: str, live: str | None = None):
    def register(cls: type["DomainEvent"]) -> type["DomainEvent"]:
        if name in CATALOGUE:
            raise ValueError(f"two events are named {name}")
        cls.name, cls.live = name, live
        CATALOGUE[name] = cls
        return cls

    return register


@dataclass(frozen=True)
class DomainEvent:
    """`conversation_id` and `assignee_id` decide who sees it live (see conversations.services.may_see)."""

    name: ClassVar[str]
    live: ClassVar[str | None]

    def payload(self) -> dict[str, Any]:
        # Shallow on purpose: dataclasses.asdict deep-copies, and ingest records one event per message.
        return {name: getattr(self, name) for name in _field_names(type(self))}

    def live_data(self) -> dict[str, Any]:
        """What the live bus carries besides the conversation: the ids the page fetches by."""
        keys = ("message_id", "note_id", "contact_id") if self.live == CONTACT_UPDATED else ("message_id", "note_id")
        return {key: value for key, value in self.payload().items() if key in keys}

    @property
    def previous_assignees(self) -> tuple[int | None, ...]:
        return ()


@dataclass(frozen=True)
class ConversationEvent(DomainEvent):
    conversation_id: int
    assignee_id: int | None


@_named("message.received", MESSAGE_CREATED)
@dataclass(frozen=True)
class MessageReceived(ConversationEvent):
    message_id: int
    contact_id: int | None = None
    type: str | None = None


@_named("message.updated", MESSAGE_UPDATED)
@dataclass(frozen=True)
class MessageUpdated(ConversationEvent):
    message_id: int
    change: str = "status"  # status, edit, revoke, reaction, media (fetched or quarantined)


@_named("message.queued", MESSAGE_CREATED)
@dataclass(frozen=True)
class MessageQueued(ConversationEvent):
    message_id: int
    type: str
    author_id: int | None = None


@_named("message.sent", MESSAGE_UPDATED)
@dataclass(frozen=True)
class MessageSent(ConversationEvent):
    message_id: int
    status: str  # sent, queued (retried later) or failed
    error_code: int | None = None


@_named("message.retried", MESSAGE_UPDATED)
@dataclass(frozen=True)
class MessageRetried(ConversationEvent):
    message_id: int


@_named("conversation.created", CONVERSATION_UPDATED)
@dataclass(frozen=True)
class ConversationCreated(ConversationEvent):
    contact_id: int


@_named("conversation.assigned", CONVERSATION_UPDATED)
@dataclass(frozen=True)
class ConversationAssigned(ConversationEvent):
    previous_assignee_id: int | None

    @property
    def previous_assignees(self) -> tuple[int | None, ...]:
        return (self.previous_assignee_id,)


@_named("conversation.status_changed", CONVERSATION_UPDATED)
@dataclass(frozen=True)
class ConversationStatusChanged(ConversationEvent):
    status: str
    previous_status: str
    snoozed_until: str | None = None


@_named("conversation.labelled", CONVERSATION_UPDATED)
@dataclass(frozen=True)
class ConversationLabelled(ConversationEvent):
    label_id: int
    on: bool


@_named("conversation.read", CONVERSATION_UPDATED)
@dataclass(frozen=True)
class ConversationRead(ConversationEvent):
    by_user_id: int | None = None


@_named("note.added", NOTE_CREATED)
@dataclass(frozen=True)
class NoteAdded(ConversationEvent):
    note_id: int
    kind: str = "note"


@_named("contact.changed", CONTACT_UPDATED)
@dataclass(frozen=True)
class ContactChanged(DomainEvent):
    contact_id: int
    fields: tuple[str, ...] = ()


@_named("contact.created")
@dataclass(frozen=True)
class ContactCreated(DomainEvent):
    contact_id: int


@_named("contact.deleted")
@dataclass(frozen=True)
class ContactDeleted(DomainEvent):
    contact_id: int


@_named("contacts.merged")
@dataclass(frozen=True)
class ContactsMerged(DomainEvent):
    kept_id: int
    merged_id: int
    merge_id: int  # the contact_merges row that describes it


@_named("contacts.not_duplicates")
@dataclass(frozen=True)
class DuplicatesDismissed(DomainEvent):
    low_id: int  # the pair, smaller contact id first
    high_id: int


@_named("conversation.merged", CONVERSATION_UPDATED)
@dataclass(frozen=True)
class ConversationMerged(ConversationEvent):
    """`conversation_id` is the deleted conversation, so inboxes showing it reload; `into_id` took its messages."""

    into_id: int


@_named("contact.tagged", CONTACT_UPDATED)
@dataclass(frozen=True)
class ContactTagged(DomainEvent):
    contact_id: int
    tag_id: int
    on: bool


@_named("contact.stage_changed", CONTACT_UPDATED)
@dataclass(frozen=True)
class ContactStageChanged(DomainEvent):
    contact_id: int
    stage_id: int | None
    previous_stage_id: int | None = None


@_named("tag.changed")
@dataclass(frozen=True)
class TagChanged(DomainEvent):
    tag_id: int
    change: str  # created, renamed, recoloured, deleted


@_named("stage.changed")
@dataclass(frozen=True)
class StageChanged(DomainEvent):
    stage_id: int
    change: str  # created, renamed, moved, deleted
    replacement_id: int | None = None


@_named("segment.changed")
@dataclass(frozen=True)
class SegmentChanged(DomainEvent):
    segment_id: int
    change: str  # created, renamed, redefined, deleted


@_named("contacts.bulk_changed")
@dataclass(frozen=True)
class ContactsBulkChanged(DomainEvent):
    action: str  # tag, untag, set_stage, set_owner, delete
    count: int
    refused: int = 0
    tag_id: int | None = None
    stage_id: int | None = None
    owner_id: int | None = None


@_named("contact_field.defined")
@dataclass(frozen=True)
class ContactFieldDefined(DomainEvent):
    field_id: int
    key: str


@_named("contact_field.changed")
@dataclass(frozen=True)
class ContactFieldChanged(DomainEvent):
    field_id: int
    changes: tuple[str, ...] = ()  # label, key, kind, required, pattern, options, currency, position


@_named("contact_field.deleted")
@dataclass(frozen=True)
class ContactFieldDeleted(DomainEvent):
    field_id: int
    key: str
    values: int = 0


@_named("consent.recorded", CONTACT_UPDATED)
@dataclass(frozen=True)
class ConsentRecorded(DomainEvent):
    contact_id: int
    consent_event_id: int
    status: str  # opted_in or opted_out
    source: str
    previous: str = "unknown"  # the contact's state before: opted_in, opted_out or unknown


@_named("lead_score.rules_changed")
@dataclass(frozen=True)
class LeadScoreRulesChanged(DomainEvent):
    rule_id: int | None
    change: str  # created, changed, moved, deleted


@_named("settings.changed")
@dataclass(frozen=True)
class SettingsChanged(DomainEvent):
    keys: tuple[str, ...] = ()


@_named("user.changed")
@dataclass(frozen=True)
class UserChanged(DomainEvent):
    user_id: int
    change: str  # created, role, deactivated, activated, password, two_factor, signed_out


@_named("token.changed")
@dataclass(frozen=True)
class TokenChanged(DomainEvent):
    token_id: int
    user_id: int
    change: str  # created, revoked


@_named("relay.paired")
@dataclass(frozen=True)
class RelayPaired(DomainEvent):
    relay_host: str


@_named("whatsapp.connected")
@dataclass(frozen=True)
class WhatsAppConnected(DomainEvent):
    waba_id: str
    phone_number_id: str


@_named("whatsapp.subscribed")
@dataclass(frozen=True)
class WhatsAppSubscribed(DomainEvent):
    waba_id: str
    host: str


@_named("relay.replayed")
@dataclass(frozen=True)
class RelayReplayed(DomainEvent):
    since: str


@_named("backup.finished")
@dataclass(frozen=True)
class BackupFinished(DomainEvent):
    ok: bool
    file: str | None = None


@_named("export.finished")
@dataclass(frozen=True)
class ExportFinished(DomainEvent):
    what: str
    format: str
    rows: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@_named("contacts.import_queued")
@dataclass(frozen=True)
class ContactsImportQueued(DomainEvent):
    job_id: int


@_named("contacts.imported")
@dataclass(frozen=True)
class ContactsImported(DomainEvent):
    """One event for a whole file: recording one per contact would cost a 100,000-row import its speed."""

    job_id: int
    state: str
    created: int = 0
    updated: int = 0
    rejected: int = 0


@_named("contacts.import_undone")
@dataclass(frozen=True)
class ContactsImportUndone(DomainEvent):
    job_id: int
    deleted: int = 0
    restored: int = 0
    kept: int = 0


@_named("contacts.import_undo_queued")
@dataclass(frozen=True)
class ContactsImportUndoQueued(DomainEvent):
    job_id: int


@_named("product.changed")
@dataclass(frozen=True)
class ProductChanged(DomainEvent):
    product_id: int


@_named("order.created", CONTACT_UPDATED)
@dataclass(frozen=True)
class OrderCreated(DomainEvent):
    order_id: int
    contact_id: int
    source: str


@_named("order.changed", CONTACT_UPDATED)
@dataclass(frozen=True)
class OrderChanged(DomainEvent):
    order_id: int
    contact_id: int


@_named("order.status_changed", CONTACT_UPDATED)
@dataclass(frozen=True)
class OrderStatusChanged(DomainEvent):
    order_id: int
    contact_id: int
    from_status: str | None
    to_status: str


@_named("order.deleted", CONTACT_UPDATED)
@dataclass(frozen=True)
class OrderDeleted(DomainEvent):
    order_id: int
    contact_id: int


@_named("orders.imported")
@dataclass(frozen=True)
class OrdersImported(DomainEvent):
    """One event for a whole import, as contacts.imported: consumers re-read what changed."""

    count: int


@_named("orders.import_undone")
@dataclass(frozen=True)
class OrdersImportUndone(DomainEvent):
    """An orders import was taken back: its orders are gone, so forecasts and scores that counted them are
    stale (the contacts it created, if any, leave with contacts.import_undone)."""

    job_id: int
    removed: int = 0


@_named("products.catalog_sync_queued")
@dataclass(frozen=True)
class CatalogSyncQueued(DomainEvent):
    """`user_id`: who asked, so the worker's sync is audited as theirs (None: SigDesk itself)."""

    user_id: int | None = None


@_named("broadcast.changed")
@dataclass(frozen=True)
class BroadcastChanged(DomainEvent):
    """`change`: created, edited, scheduled, started, paused, resumed, cancelled, completed or deleted; `reason`
    says in words why SigDesk itself paused it (the limit, Meta's quality signal, a revoked token)."""

    broadcast_id: int
    change: str
    status: str
    reason: str | None = None


@_named("broadcast.progressed")
@dataclass(frozen=True)
class BroadcastProgressed(DomainEvent):
    """One event per batch the engine sent (not per recipient): counts of the states this batch reached."""

    broadcast_id: int
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    retrying: int = 0


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(spec.name for spec in fields(cls))


def from_stored(name: str, payload: dict[str, Any]) -> DomainEvent | None:
    """An event read back from the outbox; None for a name this version no longer knows."""
    cls = CATALOGUE.get(name)
    if cls is None:
        return None
    known = {key: value for key, value in payload.items() if key in cls.__dataclass_fields__}
    for key, value in known.items():
        if isinstance(value, list):
            known[key] = tuple(value)
    return cls(**known)
