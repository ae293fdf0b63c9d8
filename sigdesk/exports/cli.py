"""`sigdesk export`: the business's data as JSON Lines or CSV files."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import click

from sigdesk.exports.services import FORMATS, KINDS, WHAT
from sigdesk.terminal import progress_bar
from sigdesk.words import counted


@click.command("export")
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True, help="CSV or JSON Lines."
)
@click.option("--what", type=click.Choice(WHAT), default="all", show_default=True)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False),
    help="New file to write: .zip for --what all, else .csv (CSV) or .jsonl (JSON Lines; .ndjson, .json too).",
)
@click.option("--bom", is_flag=True, help="Start CSV files with the byte-order mark Excel needs to read UTF-8.")
@click.option(
    "--segment",
    metavar="NAME_OR_ID",
    default=None,
    help="Only the contacts in this saved segment (with --what contacts).",
)
@click.option(
    "--ids",
    metavar="1,2,3",
    default=None,
    help="Only these contacts, by id, separated by commas (with --what contacts).",
)
@click.pass_obj
def export(obj: Any, fmt: str, what: str, out: str, bom: bool, segment: str | None, ids: str | None) -> None:
    """Export contacts (every field, custom fields included; all of them, a saved segment or a selection),
    conversations, messages, templates or the audit log (or all of them, zipped)."""
    from sigdesk.actor import Actor
    from sigdesk.exports.services import ContactScope, ExportError, check_extension, parse_ids, run

    try:
        if segment is not None and ids is not None:
            raise ExportError("Give --segment or --ids, not both", field="segment")
        if (segment is not None or ids is not None) and what != "contacts":
            raise ExportError("--segment and --ids choose contacts: use them with --what contacts", field="what")
        scope = ContactScope(ids=parse_ids(ids, "--ids") if ids is not None else None, segment=segment)
        check_extension(what, fmt, Path(out))  # before the database is opened: the name alone decides
    except ExportError as exc:
        raise click.ClickException(str(exc)) from exc
    shown = 0
    with contextlib.ExitStack() as stack:
        bar = None

        def progress(done: int, total: int) -> None:
            nonlocal bar, shown
            if bar is None:
                bar = stack.enter_context(progress_bar(total, "Exporting"))
            bar.update(done - shown)
            shown = done

        try:
            with obj.database(existing=True) as database:
                written = run(
                    database, Actor.system("cli"), what, fmt, Path(out), bom=bom, progress=progress, contacts=scope
                )
        except ExportError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(
        f"Exported to {out}: " + ", ".join(counted(count, *KINDS[kind].noun) for kind, count in written.items()) + "."
    )
