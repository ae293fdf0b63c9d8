"""`sigdesk templates ...`: message templates from the command line.

`templates sync` does what the Templates page's sync button does (sigdesk.message_templates.views.sync):
list the account's templates at Meta, then store them in one transaction, marking those deleted at Meta.
Meta is asked before anything is written, so a refusal (not connected, a revoked token) changes nothing and
exits 1 with the reason.
"""

from __future__ import annotations

from typing import Any

import click


@click.group("templates")
def templates() -> None:
    """Message templates: sync them from Meta."""


@templates.command("sync")
@click.pass_obj
def sync_command(obj: Any) -> None:
    """Fetch the WhatsApp account's templates from Meta and store them (deleted ones are marked DELETED)."""
    from sqlalchemy import func, select

    from sigdesk.actor import Actor
    from sigdesk.message_templates import services
    from sigdesk.models import Template
    from sigdesk.whatsapp.errors import GraphError
    from sigdesk.whatsapp_account.services import NotConnected, graph_client

    with obj.store(existing=True) as (session, cipher):
        try:
            client = graph_client(session, cipher)
        except NotConnected as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()  # no transaction (nor SQLite's write lock) is held while Meta answers
        with client:
            try:
                listed = client.list_templates()
            except GraphError as exc:
                raise click.ClickException(exc.human) from exc
        count = services.sync(session, Actor.system("cli"), listed)
        approved = session.scalar(select(func.count(Template.id)).where(func.upper(Template.status) == "APPROVED"))
    click.echo(f"{count} templates synced from Meta ({approved} approved).")
