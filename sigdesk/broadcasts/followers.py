"""What happens to each recipient's message after the engine sent it: the outbox consumer that moves
recipients on from their message's statuses (delivered, read, failed; an `unknown` one too, once Meta's
webhook adopted its message) and from replies (the newest broadcast the contact got within
broadcasts.attribution_days). Forward only, one guarded UPDATE per kind; one read per batch and kind, so
ingest keeps its speed.

The one move back: Meta usually reports the per-user marketing limit (131049) in a failed status webhook,
after it accepted the send. Meta did not deliver that message, so the recipient goes back to pending for a
retry at the next of engine.USER_LIMIT_RETRIES (a new message; a completed campaign runs again for it);
after the last one it fails with Meta's reason.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from sigdesk.broadcasts import commands, limits
from sigdesk.broadcasts.engine import (
    MAYBE_SENT,
    USER_LIMIT_RETRIES,
    USER_MARKETING_LIMIT,
    below,
    failure_reason_of,
    lower_states,
)
from sigdesk.db import update_rows, utcnow, write_lock
from sigdesk.models import Message, MessageStatus
from sigdesk.models.broadcast import RECIPIENT_RANK, Broadcast, BroadcastRecipient
from sigdesk.outbound import services as outbound

TARGETS = {"sent": "sent", "delivered": "delivered", "read": "read", "played": "read"}
STAMPS = {"sent": "sent_at", "delivered": "delivered_at", "read": "read_at"}
# The states a recipient whose message Meta held back (131049) can be in: the message left, nothing arrived.
HELD_BACK_FROM = ("sending", "unknown", "sent")


class Followers:
    # message.sent too: statuses Meta reported before the send's answer was stored are applied by the send
    # path without a message.updated of their own.
    EVENTS = ("message.updated", "message.sent", "message.received")

    def __call__(self, session: Session, events: list[Any]) -> int:
        acted = 0
        statuses = [
            item.event.message_id
            for item in events
            if item.event.name in ("message.updated", "message.sent")
            and getattr(item.event, "change", "status") == "status"
        ]
        replies = [
            (item.event.contact_id, item.event.message_id)
            for item in events
            if item.event.name == "message.received" and item.event.contact_id is not None
        ]
        if statuses:
            acted += self._statuses(session, statuses)
        if replies:
            acted += self._replies(session, replies)
        return acted

    @staticmethod
    def _statuses(session: Session, message_ids: list[int]) -> int:
        rows = session.execute(
            select(
                BroadcastRecipient.id,
                BroadcastRecipient.state,
                BroadcastRecipient.attempts,
                BroadcastRecipient.broadcast_id,
                Broadcast.status,
                Message.id,
                Message.status,
                Message.error_code,
                Message.error_explanation,
            )
            .join(BroadcastRecipient, BroadcastRecipient.message_id == Message.id)
            .join(Broadcast, Broadcast.id == BroadcastRecipient.broadcast_id)
            .where(Message.id.in_(sorted(set(message_ids))), Message.broadcast_id.is_not(None))
        ).all()
        session.commit()
        now = utcnow()
        targets: dict[str, list[int]] = {}
        failed: list[dict[str, Any]] = []
        held_back: list[dict[str, Any]] = []
        reopen: set[int] = set()
        for recipient_id, state, attempts, broadcast_id, campaign, message_id, status, code, explanation in rows:
            target = TARGETS.get(status or "")
            if status == MessageStatus.FAILED.value:
                if explanation in (outbound.INTERRUPTED, MAYBE_SENT) or state == "failed":
                    continue
                if (
                    code == USER_MARKETING_LIMIT
                    and state in HELD_BACK_FROM
                    and attempts < len(USER_LIMIT_RETRIES)
                    and campaign != "cancelled"
                ):
                    held_back.append(
                        {"b_id": recipient_id, "b_message_id": message_id, "b_at": now + USER_LIMIT_RETRIES[attempts]}
                    )
                    if campaign == "completed":
                        reopen.add(broadcast_id)
                    continue
                failed.append(
                    {"id": recipient_id, "reason": failure_reason_of(code, explanation)[:2000], "error_code": code}
                )
            elif target is not None and RECIPIENT_RANK[state] < RECIPIENT_RANK[target]:
                targets.setdefault(target, []).append(recipient_id)
        if not targets and not failed and not held_back:
            return 0
        table = BroadcastRecipient.__table__
        with write_lock(session):
            for target, ids in targets.items():
                session.execute(
                    update(BroadcastRecipient)
                    .where(BroadcastRecipient.id.in_(ids), BroadcastRecipient.state.in_(lower_states(target)))
                    .values(state=target, updated_at=now, **{STAMPS[target]: now})
                    .execution_options(synchronize_session=False)
                )
                if target != "sent":
                    session.execute(
                        update(BroadcastRecipient)
                        .where(BroadcastRecipient.id.in_(ids), BroadcastRecipient.sent_at.is_(None))
                        .values(sent_at=now)
                        .execution_options(synchronize_session=False)
                    )
            if failed:
                update_rows(
                    session, table, "id", failed, below(table.c.state, "failed"), state="failed", updated_at=now
                )
            if held_back:
                # Guarded by the message it held: a redelivered webhook finds the row no more (message_id is
                # cleared) and a recipient that moved on (delivered, failed, skipped) is not touched.
                session.execute(
                    update(table)
                    .where(
                        table.c.id == bindparam("b_id"),
                        table.c.message_id == bindparam("b_message_id"),
                        table.c.state.in_(HELD_BACK_FROM),
                    )
                    .values(
                        state="pending",
                        message_id=None,
                        sent_at=None,
                        attempts=table.c.attempts + 1,
                        next_attempt_at=bindparam("b_at"),
                        error_code=USER_MARKETING_LIMIT,
                        updated_at=now,
                    ),
                    held_back,
                )
                for broadcast_id in sorted(reopen):
                    commands.reopen_by_system(session, broadcast_id, now)
            session.commit()
        return sum(len(ids) for ids in targets.values()) + len(failed) + len(held_back)

    @staticmethod
    def _replies(session: Session, replies: list[tuple[int, int]]) -> int:
        days = int(limits.setting(session, "broadcasts.attribution_days"))
        since = utcnow() - timedelta(days=days)
        contact_ids = sorted({contact_id for contact_id, _ in replies})
        rows = session.execute(
            select(BroadcastRecipient.id, BroadcastRecipient.contact_id, BroadcastRecipient.sent_at).where(
                BroadcastRecipient.contact_id.in_(contact_ids),
                BroadcastRecipient.sent_at >= since,
                BroadcastRecipient.state.in_(lower_states("replied")),
            )
        ).all()
        session.commit()
        newest: dict[int, tuple[datetime, int]] = {}
        for recipient_id, contact_id, sent_at in rows:
            if contact_id not in newest or sent_at > newest[contact_id][0]:
                newest[contact_id] = (sent_at, recipient_id)
        if not newest:
            return 0
        first_reply: dict[int, int] = {}
        for contact_id, message_id in replies:
            first_reply.setdefault(contact_id, message_id)
        now = utcnow()
        table = BroadcastRecipient.__table__
        with write_lock(session):
            update_rows(
                session,
                table,
                "id",
                [
                    {"id": recipient_id, "reply_message_id": first_reply[contact_id]}
                    for contact_id, (_, recipient_id) in newest.items()
                ],
                below(table.c.state, "replied"),
                state="replied",
                replied_at=now,
                updated_at=now,
            )
            session.commit()
        return len(newest)
