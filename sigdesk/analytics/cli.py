"""`sigdesk analytics rebuild`: recompute the dashboard's rollups from the stored history."""

from __future__ import annotations

from typing import Any

import click

from sigdesk.terminal import quiet_unless_verbose


@click.group()
def analytics() -> None:
    """The Analytics dashboard's rollups."""


@analytics.command()
@click.option("--restart", is_flag=True, help="Start over instead of resuming a rebuild that was interrupted.")
@click.option("--batch", type=click.IntRange(min=1), default=None, help="Messages per write transaction.")
@click.pass_obj
def rebuild(obj: Any, restart: bool, batch: int | None) -> None:
    """Recount messages and conversation episodes from history, in short transactions (safe to run at any
    time: the inbox keeps writing; an interrupted rebuild resumes where it stopped)."""
    from sigdesk.analytics.rollups import BATCH
    from sigdesk.analytics.rollups import rebuild as run

    def progress(stage: str, done: int, of: int) -> None:
        click.echo(f"{stage}: {done}/{of}", err=True)

    with (
        quiet_unless_verbose("sigdesk.analytics"),  # its summary repeats the command's last line
        obj.database(existing=True) as database,
        database.session() as session,
    ):
        messages, episodes = run(session, batch=batch or BATCH, progress=progress, restart=restart)
    click.echo(f"{messages} messages, {episodes} conversation episodes")
