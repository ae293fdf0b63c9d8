"""What admins see of the webhook pipeline: refused signatures, failed or quarantined deliveries, account news."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sigdesk.db import read_json
from sigdesk.inbound.services import rejected_count
from sigdesk.models import AccountEvent, DeliveryState, WebhookDelivery

PROBLEM_STATES = (DeliveryState.FAILED.value, DeliveryState.QUARANTINED.value)


@dataclass(frozen=True)
class Health:
    by_state: dict[str, int]
    rejected_signatures: int
    last_received_at: object


def health(session: Session) -> Health:
    counts = dict(session.execute(select(WebhookDelivery.state, func.count()).group_by(WebhookDelivery.state)).all())
    return Health(
        by_state={state.value: counts.get(state.value, 0) for state in DeliveryState},
        rejected_signatures=rejected_count(session),
        last_received_at=session.scalar(select(func.max(WebhookDelivery.received_at))),
    )


def problems(session: Session, limit: int = 50) -> list[WebhookDelivery]:
    return list(
        session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.state.in_(PROBLEM_STATES))
            .order_by(WebhookDelivery.received_at.desc())
            .limit(limit)
        )
    )


def account_events(session: Session, limit: int = 50) -> list[dict]:
    rows = session.scalars(select(AccountEvent).order_by(AccountEvent.created_at.desc()).limit(limit))
    return [
        {
            "field": row.field,
            "event": row.event,
            "at": row.occurred_at or row.created_at,
            "summary": _summary(row.payload),
        }
        for row in rows
    ]


def _summary(payload: str) -> str:
    value = read_json(payload, None, "account_events.payload")
    text = payload if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 300 else text[:300] + "…"
