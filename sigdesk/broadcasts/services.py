"""Reading broadcasts: the one serializer (BroadcastData) the API, the pages and the CLI answer with, the
recipient table, failures grouped by reason, progress over time and a per-recipient preview."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

from pydantic import BaseModel, Field, WithJsonSchema
from sqlalchemy import DateTime, Integer, cast, func, literal, literal_column, select, union_all
from sqlalchemy.orm import Session

from sigdesk.broadcasts import variables
from sigdesk.broadcasts.commands import get as get_row
from sigdesk.contacts.services import contact_name
from sigdesk.db import read_json
from sigdesk.errors import UserError
from sigdesk.message_templates import services as templates
from sigdesk.models import Contact, Template
from sigdesk.models.broadcast import BROADCAST_STATUSES, PAUSE_KINDS, RECIPIENT_STATES, Broadcast, BroadcastRecipient
from sigdesk.paging import Cursor, Page, newest_first, page


def _one_of(values: tuple[str, ...], nullable: bool = False) -> Any:
    """A text field the OpenAPI document lists the values of (the model keeps plain str for its readers)."""
    schema: dict[str, Any] = {"type": "string", "enum": list(values)}
    return WithJsonSchema({"anyOf": [schema, {"type": "null"}]} if nullable else schema)


# Every recipient state is a key, zeros included, so a client can read counts["unknown"] without a default.
Counts = Annotated[
    dict[str, int],
    WithJsonSchema(
        {
            "type": "object",
            "properties": {state: {"type": "integer", "minimum": 0} for state in RECIPIENT_STATES},
            "required": list(RECIPIENT_STATES),
            "additionalProperties": False,
        }
    ),
]


class TemplateRef(BaseModel):
    name: str
    language: str
    category: str | None = Field(description="MARKETING, UTILITY or AUTHENTICATION, as Meta says")


class BroadcastData(BaseModel):
    """A broadcast as every reader sees it; `counts` has every recipient state, zeros included."""

    id: int
    name: str
    status: Annotated[str, _one_of(BROADCAST_STATUSES)] = Field(description=f"One of {', '.join(BROADCAST_STATUSES)}")
    template: TemplateRef
    variables: dict[str, dict[str, str]] = Field(description="Per component: placeholder -> expression")
    audience: dict[str, Any] = Field(description="{segment_id} | {contact_ids} | {import_id}")
    rate_per_second: int
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    pause_kind: Annotated[str | None, _one_of(PAUSE_KINDS, nullable=True)] = Field(
        description=f"Why it is paused: one of {', '.join(PAUSE_KINDS)}; null unless paused"
    )
    pause_reason: str | None
    resume_at: datetime | None = Field(description="When a campaign paused by the messaging limit goes on by itself")
    recipient_count: int = Field(description="Recipients frozen at start (0 before)")
    counts: Counts = Field(description=f"Recipients per state: {', '.join(RECIPIENT_STATES)}")
    created_at: datetime

    @classmethod
    def of(cls, broadcast: Broadcast, counts: dict[str, int] | None = None) -> "BroadcastData":
        found = read_json(broadcast.variables, dict, "broadcasts.variables") if broadcast.variables else {}
        chosen = read_json(broadcast.audience, dict, "broadcasts.audience") if broadcast.audience else {}
        return cls(
            id=broadcast.id,
            name=broadcast.name,
            status=broadcast.status,
            template=TemplateRef(
                name=broadcast.template_name,
                language=broadcast.template_language,
                category=broadcast.template_category,
            ),
            variables=variables.normalise(found or {}),
            audience=chosen or {},
            rate_per_second=broadcast.rate_per_second,
            scheduled_at=broadcast.scheduled_at,
            started_at=broadcast.started_at,
            finished_at=broadcast.finished_at,
            pause_kind=broadcast.pause_kind,
            pause_reason=broadcast.pause_reason,
            resume_at=broadcast.resume_at,
            recipient_count=broadcast.recipient_count or 0,
            counts={state: (counts or {}).get(state, 0) for state in RECIPIENT_STATES},
            created_at=broadcast.created_at,
        )


def _counts_of(session: Session, broadcast_ids: list[int]) -> dict[int, dict[str, int]]:
    found: dict[int, dict[str, int]] = {
        broadcast_id: dict.fromkeys(RECIPIENT_STATES, 0) for broadcast_id in broadcast_ids
    }
    if not broadcast_ids:
        return found
    rows = session.execute(
        select(BroadcastRecipient.broadcast_id, BroadcastRecipient.state, func.count())
        .where(BroadcastRecipient.broadcast_id.in_(broadcast_ids))
        .group_by(BroadcastRecipient.broadcast_id, BroadcastRecipient.state)
    )
    for broadcast_id, state, count in rows:
        if state in found[broadcast_id]:
            found[broadcast_id][state] = count
    return found


def counts(session: Session, broadcast_id: int) -> dict[str, int]:
    """Recipients per state, every state named (zero when none)."""
    return _counts_of(session, [broadcast_id])[broadcast_id]


def get(session: Session, broadcast_id: int) -> BroadcastData:
    broadcast = get_row(session, broadcast_id)
    return BroadcastData.of(broadcast, counts(session, broadcast.id))


def list_page(session: Session, cursor: str | None, limit: int) -> Page[BroadcastData]:
    """Newest first."""
    after = Cursor.decode(cursor) if cursor else None
    found = list(session.scalars(newest_first(select(Broadcast), Broadcast.created_at, Broadcast.id, after, limit)))
    paged = page(found, limit, lambda row: Cursor(row.created_at, row.id))
    numbers = _counts_of(session, [row.id for row in paged.items])
    return Page([BroadcastData.of(row, numbers[row.id]) for row in paged.items], paged.next_cursor)


# --- recipients ------------------------------------------------------------------------------------------


class RecipientData(BaseModel):
    id: int
    contact_id: int
    contact_name: str
    wa_id: str | None = Field(description="The number it was frozen with; null when the contact had none")
    state: Annotated[str, _one_of(RECIPIENT_STATES)] = Field(description=f"One of {', '.join(RECIPIENT_STATES)}")
    reason: str | None = Field(description="Why skipped or failed, in words")
    error_code: int | None = Field(description="Meta's error code, when Meta said no")
    message_id: int | None
    attempts: int
    sent_at: datetime | None = Field(
        description="When Meta accepted it (or a later status's time, if earlier ones never came)"
    )
    delivered_at: datetime | None = Field(
        description="When it was delivered; a read message without its own delivered status shows the read time"
    )
    read_at: datetime | None
    replied_at: datetime | None
    reply_message_id: int | None


def recipients_page(
    session: Session, broadcast_id: int, state: str | None, cursor: str | None, limit: int
) -> Page[RecipientData]:
    """In the order they were frozen; `state` filters (the index is broadcast, state, id)."""
    get_row(session, broadcast_id)
    if state is not None and state not in RECIPIENT_STATES:
        raise UserError(f"'{state}' is not a recipient state ({', '.join(RECIPIENT_STATES)})", field="state")
    after = Cursor.decode(cursor).id if cursor else 0
    query = (
        select(BroadcastRecipient, Contact.display_name, Contact.profile_name, Contact.wa_id, Contact.user_id)
        .join(Contact, Contact.id == BroadcastRecipient.contact_id)
        .where(BroadcastRecipient.broadcast_id == broadcast_id, BroadcastRecipient.id > after)
        .order_by(BroadcastRecipient.id)
        .limit(limit + 1)
    )
    if state is not None:
        query = query.where(BroadcastRecipient.state == state)
    rows = session.execute(query).all()
    items = [
        RecipientData(
            id=row.id,
            contact_id=row.contact_id,
            contact_name=contact_name(row.contact_id, display, profile, wa_id, user_id),
            wa_id=row.wa_id if row.wa_id.isdigit() else None,
            state=row.state,
            reason=row.reason,
            error_code=row.error_code,
            message_id=row.message_id,
            attempts=row.attempts,
            # a later status implies the earlier: Meta may send "read" without (or before) "delivered"
            sent_at=row.sent_at or row.delivered_at or row.read_at,
            delivered_at=row.delivered_at or row.read_at,
            read_at=row.read_at,
            replied_at=row.replied_at,
            reply_message_id=row.reply_message_id,
        )
        for row, display, profile, wa_id, user_id in rows[:limit]
    ]
    more = len(rows) > limit and bool(items)
    return Page(items, Cursor(None, items[-1].id).encode() if more else None)


def failure_groups(session: Session, broadcast_id: int) -> list[tuple[int | None, str | None, int]]:
    """Failed recipients grouped by Meta's code and reason, most first."""
    rows = session.execute(
        select(BroadcastRecipient.error_code, BroadcastRecipient.reason, func.count())
        .where(BroadcastRecipient.broadcast_id == broadcast_id, BroadcastRecipient.state == "failed")
        .group_by(BroadcastRecipient.error_code, BroadcastRecipient.reason)
    ).all()
    return sorted(((code, reason, count) for code, reason, count in rows), key=lambda row: (-row[2], row[1] or ""))


PROGRESS_SERIES = ("sent", "delivered", "read", "replied", "failed", "skipped")


def _seconds_since(session: Session, column: Any, start: datetime) -> Any:
    """Whole seconds from `start` to the stored moment, computed by the database (SQLite keeps text, MariaDB
    DATETIME in UTC; UNIX_TIMESTAMP would read the session's zone, TIMESTAMPDIFF does not)."""
    if session.get_bind().dialect.name == "sqlite":
        return cast(func.strftime("%s", column), Integer) - int(start.timestamp())
    naive = start.astimezone(timezone.utc).replace(tzinfo=None)
    return func.timestampdiff(literal_column("SECOND"), literal(naive, DateTime), column)


def progress(session: Session, broadcast_id: int, bucket_seconds: int = 60) -> list[dict[str, Any]]:
    """Cumulative sent / delivered / read / replied / failed / skipped at the end of each bucket since the start.

    A read message was delivered and sent too, so each later timestamp also counts for the earlier series
    when Meta skipped a status; failed and skipped count when their row last changed. Counted per bucket by
    the database (one pass per series over the broadcast's rows), so the page's poll stays cheap at 100,000
    recipients."""
    bucket = max(1, int(bucket_seconds))
    broadcast = get_row(session, broadcast_id)
    start = broadcast.started_at
    if start is None:
        return []
    row = BroadcastRecipient
    reached = row.state.not_in(("failed", "skipped"))
    moments = {
        "sent": (func.coalesce(row.sent_at, row.delivered_at, row.read_at, row.replied_at), reached),
        "delivered": (func.coalesce(row.delivered_at, row.read_at, row.replied_at), reached),
        "read": (func.coalesce(row.read_at, row.replied_at), reached),
        "replied": (row.replied_at, reached),
        "failed": (row.updated_at, row.state == "failed"),
        "skipped": (row.updated_at, row.state == "skipped"),
    }
    parts = []
    for name, (moment, condition) in moments.items():
        slot = (_seconds_since(session, moment, start) // bucket).label("slot")
        parts.append(
            select(literal(name).label("series"), slot, func.count().label("n"))
            .where(row.broadcast_id == broadcast_id, condition, moment.is_not(None))
            .group_by(slot)
        )
    per: dict[str, Counter[int]] = {name: Counter() for name in PROGRESS_SERIES}
    for name, slot, count in session.execute(union_all(*parts)):
        per[name][max(0, int(slot or 0))] += int(count)
    last = max((index for counter in per.values() for index in counter), default=0)
    series: list[dict[str, Any]] = []
    running = dict.fromkeys(PROGRESS_SERIES, 0)
    for index in range(last + 1):
        for name in PROGRESS_SERIES:
            running[name] += per[name][index]
        series.append({"at": start + timedelta(seconds=(index + 1) * bucket), **running})
    return series


# --- a preview -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    """The words this contact would read, or why they would be skipped (`reason`)."""

    text: str | None
    reason: str | None = None


def preview(session: Session, broadcast: Broadcast, contact_id: int) -> Preview:
    given = read_json(broadcast.variables, dict, "broadcasts.variables") if broadcast.variables else {}
    facts = variables.facts_for(session, [contact_id]).get(contact_id)
    if facts is None:
        return Preview(None, "contact deleted")
    filled = variables.fill(given, facts)
    if isinstance(filled, str):
        return Preview(None, filled)
    template = session.get(Template, broadcast.template_id) if broadcast.template_id else None
    if template is None:
        return Preview(None, "the template is no longer synced")
    try:
        content = templates.template_content(session, template.id, filled)
    except UserError as exc:
        return Preview(None, str(exc))
    return Preview(templates.sent_text(template, content) or "")
