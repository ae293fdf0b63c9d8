"""Who did what, when and from where; never message bodies or secrets."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from sigdesk.actor import Actor
from sigdesk.models import AuditEvent, LoginEvent, User


class AuditData(BaseModel):
    """An audit entry as the audit log page and the audit export show it: `detail` is the JSON text as stored."""

    id: int
    at: datetime
    actor_id: int | None
    actor_email: str | None
    channel: str | None  # how the actor acted: web, api, cli, wizard, worker or webhook
    action: str
    target: str | None
    ip: str | None
    detail: str | None

    @classmethod
    def of(cls, event: AuditEvent) -> "AuditData":
        return cls(**{field: getattr(event, field) for field in cls.model_fields})


def record(
    session: Session,
    action: str,
    actor: User | None = None,
    target: str | None = None,
    ip: str | None = None,
    detail: dict[str, Any] | None = None,
    channel: str | None = None,
) -> AuditEvent:
    event = AuditEvent(
        action=action,
        actor_id=actor.id if actor else None,
        actor_email=actor.email if actor else None,
        target=target,
        ip=ip,
        channel=channel,
        detail=json.dumps(detail, sort_keys=True) if detail else None,
    )
    session.add(event)
    session.flush()
    return event


def record_by(
    session: Session, actor: Actor, action: str, target: str | None = None, detail: dict[str, Any] | None = None
) -> AuditEvent:
    """The audit entry of a command: who (and through which token), from where, by which way in."""
    if actor.token_id is not None:
        detail = {**(detail or {}), "token_id": actor.token_id}
    return record(session, action, actor.user, target, actor.ip, detail, actor.channel)


def record_login(
    session: Session,
    email: str,
    user: User | None,
    ip: str | None,
    user_agent: str | None,
    success: bool,
    reason: str | None = None,
) -> LoginEvent:
    event = LoginEvent(
        email=email[:254],
        user_id=user.id if user else None,
        ip=ip,
        user_agent=(user_agent or "")[:512],
        success=success,
        reason=reason,
    )
    session.add(event)
    session.flush()
    return event


def _window(query: Select, column, since: datetime | None, until: datetime | None) -> Select:
    if since:
        query = query.where(column >= since)
    if until:
        query = query.where(column < until)
    return query


def list_audit(
    session: Session,
    action: str | None = None,
    actor_email: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
) -> list[AuditData]:
    query = _window(select(AuditEvent), AuditEvent.at, since, until)
    if action:
        query = query.where(AuditEvent.action == action)
    if actor_email:
        query = query.where(AuditEvent.actor_email == actor_email)
    found = session.scalars(query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit))
    return [AuditData.of(event) for event in found]


def list_logins(
    session: Session,
    email: str | None = None,
    success: bool | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
) -> list[LoginEvent]:
    query = _window(select(LoginEvent), LoginEvent.at, since, until)
    if email:
        query = query.where(LoginEvent.email == email)
    if success is not None:
        query = query.where(LoginEvent.success == success)
    return list(session.scalars(query.order_by(LoginEvent.at.desc(), LoginEvent.id.desc()).limit(limit)))
