"""What the lead score tests share: the worker's consumer fed by hand, rules made by the command, scores read back."""

from __future__ import annotations

import json

from sqlalchemy import select

from sigdesk.actor import Actor
from sigdesk.lead_score import commands
from sigdesk.models import Contact

SYSTEM = Actor.system("cli")


def feed(app) -> None:
    """One pass of the worker's outbox consumers (the first one puts their cursors at the end of the log)."""
    state = app.extensions["sigdesk"]
    with state.database.session() as session:
        state.outbox(session)


def rule(app, kind: str, points: int, argument: str | None = None, label: str | None = None) -> int:
    with app.extensions["sigdesk"].database.session() as session:
        made = commands.create_rule(session, SYSTEM, kind, points, argument, label)
        session.commit()
        return made.id


def score(app, contact_id: int) -> tuple[int | None, list[tuple[str, int]]]:
    with app.extensions["sigdesk"].database.session() as session:
        row = session.execute(
            select(Contact.lead_score, Contact.lead_score_reasons).where(Contact.id == contact_id)
        ).one()
    reasons = json.loads(row.lead_score_reasons) if row.lead_score_reasons else []
    return row.lead_score, [(reason["label"], reason["points"]) for reason in reasons]
