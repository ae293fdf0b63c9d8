"""What the command tests share: run `sigdesk` against the app's own database, and read back what a
command left behind (its audit entries, and the domain events stored in the outbox)."""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass
from typing import Any

from click.testing import CliRunner
from sqlalchemy import select

from sigdesk.cli import main
from sigdesk.models import AuditEvent, OutboxEvent


def cli(app, *args: str, input: str | None = None):
    """`sigdesk ARGS` on the app's data dir and database, as an operator would type it."""
    config = app.extensions["sigdesk"].config
    where = ["--data-dir", str(config.data_dir), "--database-url", config.database_url]
    result = CliRunner().invoke(main, [*where, *args], input=input)
    assert result.exit_code == 0, result.output
    return result


@dataclass(frozen=True)
class Entry:
    action: str
    target: str | None
    actor: str | None
    channel: str | None
    detail: dict[str, Any]


def audit(app, action: str) -> list[Entry]:
    with app.extensions["sigdesk"].database.session() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()
        return [
            Entry(row.action, row.target, row.actor_email, row.channel, json.loads(row.detail or "{}")) for row in rows
        ]


def events(app, name: str) -> list[dict[str, Any]]:
    with app.extensions["sigdesk"].database.session() as session:
        payloads = session.scalars(
            select(OutboxEvent.payload).where(OutboxEvent.name == name).order_by(OutboxEvent.id)
        ).all()
        return [json.loads(payload) for payload in payloads]


def everything_recorded(app) -> str:
    """Every audit entry and stored event as text, to show that no secret reached either."""
    with app.extensions["sigdesk"].database.session() as session:
        details = [row.detail or "" for row in session.scalars(select(AuditEvent))]
        return "\n".join(details + list(session.scalars(select(OutboxEvent.payload))))


def ctrl_c_as_usual() -> None:
    """preexec_fn for a `sigdesk` child that a test stops with Ctrl+C: a test run started in the background
    ignores SIGINT, children inherit that, and Python then never raises KeyboardInterrupt in them."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
