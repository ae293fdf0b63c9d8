"""`sigdesk predictions refresh` and `sigdesk predictions status`: the reorder forecasts from the terminal.

A refresh here runs in this process exactly as the server's worker runs it (the run is claimed, so a running
server leaves it alone) and shows its progress; the page shows the same run while it goes.
"""

from __future__ import annotations

import contextlib
from typing import Any

import click

from sigdesk.terminal import UNSET, progress_bar, quiet_unless_verbose


@click.group("predictions")
def predictions() -> None:
    """Reorder predictions: refresh every customer's forecast, or see where the last refresh is."""


@predictions.command("refresh")
@click.pass_obj
def refresh(obj: Any) -> None:
    """Recompute every customer's reorder forecast now, with a progress bar."""
    from sigdesk.errors import UserError
    from sigdesk.predictions import services

    shown = 0
    with contextlib.ExitStack() as stack:
        stack.enter_context(quiet_unless_verbose("sigdesk.predictions"))  # its summary repeats the last line
        bar = None

        def progress(done: int, total: int) -> None:
            nonlocal bar, shown
            if bar is None:
                bar = stack.enter_context(progress_bar(total, "Forecasting"))
            bar.update(done - shown)
            shown = done

        with obj.database(existing=True) as database, database.session() as session:
            try:
                run = services.refresh_now(session, "cli", progress)
            except UserError as exc:
                raise click.ClickException(str(exc)) from exc
            state, total, as_of, error = run.state, run.total, run.as_of, run.error
    if bar is not None:
        click.echo("", err=True)
    if state != "done":
        raise click.ClickException(error or f"The refresh ended {state}")
    click.echo(f"{total} customers forecast as of {as_of.isoformat() if as_of else UNSET}")


@predictions.command("status")
@click.pass_obj
def status(obj: Any) -> None:
    """Where the latest refresh is, and how current the forecasts are."""
    from sigdesk.predictions import services

    with obj.database(existing=True) as database, database.session() as session:
        found = services.status(session)
    click.echo(f"State: {found.state}")
    if found.state in ("queued", "running"):
        click.echo(f"Progress: {found.processed} of {found.total} customers")
    click.echo(f"Forecasts as of: {found.as_of.isoformat() if found.as_of else UNSET}")
    click.echo(f"Customers forecast: {found.customers}")
    click.echo(f"Horizons (days): {', '.join(map(str, found.horizons))}")
    if found.error:
        click.echo(f"Last error: {found.error}")
